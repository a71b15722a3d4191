// simclr-ts/nn: modules, layers and initialisers in PyTorch's shape.
export { Module, parameter } from './module';
export * from './layers';
export * as init from './init';
export { prepareModel, layoutBatch, inPrecision, forwardIn } from './compute';
export { inference } from './inference';
