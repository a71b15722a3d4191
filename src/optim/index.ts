export * from './sgd';
