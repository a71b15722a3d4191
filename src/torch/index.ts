// simclr-ts/torch: tensors, ops, autograd and memory scopes over libtorch.
export { Tensor, isDType, type DType, type MemoryFormat, type TypedArray } from './tensor';
export * from './create';
export * as F from './functional';
export * from './modes';
export * from './compute';
export { defaultCacheDir } from './cache-dir';
export { native } from './native';
export { tuneProcess, blas, type TuneOptions, type TuneResult } from './tune';
export type { BlasChoice } from './blas';
export { tidy, keep, scopeDepth } from './scope';
export { loadSafetensors, saveSafetensors, parseHeader, SafetensorsError, MAX_HEADER_BYTES, type LoadedSafetensors } from './safetensors';
