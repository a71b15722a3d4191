// simclr-ts: label-efficient image classification, the SimCLRv2 way, on libtorch.
export * from './torch';
export * as nn from './nn';
export * from './models';
export * from './optim';
export * from './augment';
export * from './losses';
export * as run from './run';
export * as distributed from './distributed';
export * as data from './data';
