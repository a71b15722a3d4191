// simclr-ts/losses: NT-Xent, distillation, cross-entropy.
export * from './nt-xent';
export * from './distill';
