// simclr-ts/augment: SimCLR views as batched tensor operations.
export * from './views';
export * from './small';
export * from './normalise';
export * from './grid';
