// simclr-ts/data: sources (image folders, idx, CIFAR binary), cache, label subsets, batches.
export * from './dataset';
export * from './idx';
export * from './cifar-binary';
export * from './image-folder';
export * from './sources';
export * from './subset';
export * from './loader';
export * from './store';
export * from './stream';
export * from './inputs';
export * from './labels';
export * from './write-folder';
