// simclr-ts/optim: SGD, LARS and schedules.
export * from './base';
export * from './sgd';
export * from './lars';
export * from './schedule';
export { isNormOrBias, type NamedParams } from './params';
