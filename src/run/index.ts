// simclr-ts/run: runs as typed plans (pretraining, the classifier stages, the pipeline, the
// demo), the run folder, results and the report.
export * from './errors';
export * from './defaults';
export * from './folder';
export * from './plans';
export * from './results';
export * from './report';
export * from './evaluate';
export * from './stream-eval';
export * from './demo';
export * from './suggest';
export * from './embed';
export { isBuiltInSpec, labelSetTag, openTrainImages, openTestImages } from './data';
export { leadProcess, withWorkers, type WorkersPlan } from './workers';
