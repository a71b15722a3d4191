// The stored-image layer: stored sizes, shards on disk, reading ahead.
export * from './stored';
export * from './decode';
export * from './shard-plan';
export * from './shard-file';
export * from './shard-store';
export * from './shard-cache';
export * from './memory-store';
export * from './prefetch';
