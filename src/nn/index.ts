// simclr-ts/nn: modules, layers and initialisers in PyTorch's shape.
export { Module, parameter } from './module';
export * from './layers';
export * as init from './init';
export { prepareModel, layoutBatch, inPrecision, forwardIn } from './compute';
export { inference, holdForInference } from './inference';
export { foldedAffine, foldForInference, batchNormPairs, isFolded, type FoldPairs, type Foldable } from './fold';
