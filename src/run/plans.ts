// Runs as typed plans (src/run/stages): pretraining, the classifier stages and the pipeline,
// each in a file of its own, with the plan types, compute checks and resume checks they share.
export * from './stages/types';
export { runPretrain } from './stages/pretrain';
export { runClassifierStage, stageName, stageNameFor } from './stages/classifier';
export { runPipeline, type PipelinePlan } from './stages/pipeline';
