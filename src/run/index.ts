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
export { runDemo, DEMO_SIZES, DEMO_LABELS, type DemoOptions } from './demo';
export { DEMO_ROWS, errorsRemoved } from './demo/summary';
export * from './suggest';
export * from './embed';
export { isBuiltInSpec, labelSetTag, openTrainImages, openTestImages } from './data';
export { leadProcess, withWorkers, type WorkersPlan } from './workers';
