// Loads the compiled addon, on first use, and describes its op table to TypeScript.
// Importing the library must not change the host process, so nothing loads libtorch
// (which loads OpenBLAS and its threads) until the first tensor op.
import { isBlasProbe, rememberedChoice } from './blas';
import { checkBlasProduct } from './blas-check';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** A number naming a libtorch tensor in the addon's slot table (index + generation). */
export type Handle = number & { readonly __brand: 'TensorHandle' };

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'uint8' | 'int8' | 'int16' | 'int32' | 'int64' | 'bool';
export type MemoryFormat = 'contiguous' | 'channels_last' | 'preserve';
export type Reduction = 'mean' | 'sum' | 'none';
export type CompareOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';

type H = Handle;
type Opt<X> = X | undefined | null;

export interface NativeAddon {
  buildInfo: string;
  headerVersion: string;
  /** How the process allocator is set up now: "glibc defaults" until tuneAllocator(). */
  readonly allocator: string;
  /** Keeps freed memory in glibc's heap for reuse (unless SIMCLR_SYSTEM_MALLOC=1); returns the new state. */
  tuneAllocator(): string;
  dispose(t: H): boolean;
  isDisposed(t: H): boolean;
  liveTensors(): number;
  liveBytes(): number;
  shape(t: H): number[];
  strides(t: H): number[];
  dtype(t: H): DType;
  device(t: H): string;
  numel(t: H): number;
  item(t: H): number;
  isContiguous(t: H, format?: MemoryFormat): boolean;
  fromBytes(bytes: ArrayBufferView | ArrayBuffer, shape: number[], dtype: DType): H;
  toBytes(t: H): Buffer;

  zeros(shape: number[], dtype?: DType, device?: string): H;
  ones(shape: number[], dtype?: DType, device?: string): H;
  empty(shape: number[], dtype?: DType, device?: string): H;
  full(shape: number[], value: number, dtype?: DType, device?: string): H;
  arange(start: number, end: number, step: number, dtype?: DType, device?: string): H;
  linspace(start: number, end: number, steps: number, dtype?: DType, device?: string): H;
  eye(n: number, dtype?: DType, device?: string): H;
  zerosLike(t: H): H;
  onesLike(t: H): H;
  fullLike(t: H, value: number): H;
  rand(shape: number[], dtype?: DType, device?: string): H;
  randn(shape: number[], dtype?: DType, device?: string): H;
  randint(low: number, high: number, shape: number[], dtype?: Opt<DType>, device?: string): H;
  randperm(n: number, device?: string): H;
  bernoulli(p: H): H;
  bernoulliP(like: H, p: number): H;
  normal_(t: H, mean: number, std: number): H;
  uniform_(t: H, low: number, high: number): H;
  manualSeed(seed: number): void;
  getRngState(): H;
  setRngState(state: H): void;

  toDtype(t: H, dtype: DType): H;
  toDevice(t: H, device: string): H;
  contiguous(t: H, format?: MemoryFormat): H;
  clone(t: H, format?: MemoryFormat): H;
  detach(t: H): H;
  reshape(t: H, shape: number[]): H;
  view(t: H, shape: number[]): H;
  permute(t: H, dims: number[]): H;
  transpose(t: H, d0: number, d1: number): H;
  flatten(t: H, start: number, end: number): H;
  squeeze(t: H, dim: number): H;
  unsqueeze(t: H, dim: number): H;
  expand(t: H, shape: number[]): H;
  repeat(t: H, repeats: number[]): H;
  narrow(t: H, dim: number, start: number, length: number): H;
  slice(t: H, dim: number, start: number, end: number, step: number): H;
  select(t: H, dim: number, index: number): H;
  indexSelect(t: H, dim: number, index: H): H;
  gather(t: H, dim: number, index: H): H;
  scatter(t: H, dim: number, index: H, source: H): H;
  scatterAdd(t: H, dim: number, index: H, source: H): H;
  maskedSelect(t: H, mask: H): H;
  maskedFill(t: H, mask: H, value: number): H;
  cat(ts: H[], dim: number): H;
  stack(ts: H[], dim: number): H;
  chunk(t: H, chunks: number, dim: number): H[];
  split(t: H, size: number, dim: number): H[];
  flip(t: H, dims: number[]): H;
  roll(t: H, shifts: number[], dims: number[]): H;
  diagonal(t: H, offset: number, d0: number, d1: number): H;
  tril(t: H, diagonal: number): H;
  oneHot(t: H, classes: number): H;

  add(a: H, b: H, alpha?: number): H;
  sub(a: H, b: H, alpha?: number): H;
  mul(a: H, b: H): H;
  div(a: H, b: H): H;
  addScalar(t: H, v: number): H;
  mulScalar(t: H, v: number): H;
  divScalar(t: H, v: number): H;
  rsubScalar(t: H, v: number): H;
  pow(t: H, e: number): H;
  powTensor(t: H, e: H): H;
  neg(t: H): H;
  exp(t: H): H;
  log(t: H): H;
  sqrt(t: H): H;
  rsqrt(t: H): H;
  abs(t: H): H;
  tanh(t: H): H;
  sin(t: H): H;
  cos(t: H): H;
  floor(t: H): H;
  round(t: H): H;
  remainder(t: H, d: number): H;
  maximum(a: H, b: H): H;
  minimum(a: H, b: H): H;
  clamp(t: H, min?: Opt<number>, max?: Opt<number>): H;
  clampTensor(t: H, min?: Opt<H>, max?: Opt<H>): H;
  where(c: H, a: H, b: H): H;
  lerp(a: H, b: H, w: H): H;
  compare(a: H, op: CompareOp, b: H): H;
  compareScalar(a: H, op: CompareOp, v: number): H;
  logicalNot(t: H): H;
  logicalAnd(a: H, b: H): H;

  sumAll(t: H): H;
  sum(t: H, dims: number[], keepdim: boolean): H;
  meanAll(t: H): H;
  mean(t: H, dims: number[], keepdim: boolean): H;
  var(t: H, dims: number[], unbiased: boolean, keepdim: boolean): H;
  norm(t: H, p: number, dims: number[], keepdim: boolean): H;
  amax(t: H, dims: number[], keepdim: boolean): H;
  amin(t: H, dims: number[], keepdim: boolean): H;
  maxDim(t: H, dim: number, keepdim: boolean): [H, H];
  argmax(t: H, dim: number, keepdim: boolean): H;
  logsumexp(t: H, dims: number[], keepdim: boolean): H;
  topk(t: H, k: number, dim: number, largest: boolean, sorted: boolean): [H, H];
  sort(t: H, dim: number, descending: boolean): [H, H];

  matmul(a: H, b: H): H;
  linear(x: H, w: H, b?: Opt<H>): H;
  conv2d(x: H, w: H, b: Opt<H>, stride: number[], padding: number[], dilation: number[], groups: number): H;
  batchNorm(x: H, w: Opt<H>, b: Opt<H>, rm: Opt<H>, rv: Opt<H>, training: boolean, momentum: number, eps: number): H;
  maxPool2d(x: H, kernel: number[], stride: number[], padding: number[], dilation: number[], ceilMode: boolean): H;
  avgPool2d(x: H, kernel: number[], stride: number[], padding: number[], ceilMode: boolean, countIncludePad: boolean): H;
  adaptiveAvgPool2d(x: H, size: number[]): H;
  relu(t: H): H;
  relu_(t: H): H;
  sigmoid(t: H): H;
  softmax(t: H, dim: number): H;
  logSoftmax(t: H, dim: number): H;
  crossEntropy(logits: H, target: H, weight?: Opt<H>, reduction?: Reduction, ignoreIndex?: number, labelSmoothing?: number): H;
  nllLoss(logProbs: H, target: H, weight?: Opt<H>, reduction?: Reduction, ignoreIndex?: number): H;
  affineGrid(theta: H, size: number[], alignCorners: boolean): H;
  gridSample(x: H, grid: H, mode?: string, paddingMode?: string, alignCorners?: boolean): H;
  interpolate(x: H, size: number[], mode?: string, alignCorners?: boolean): H;

  add_(t: H, o: H, alpha?: number): H;
  addScalar_(t: H, v: number): H;
  mul_(t: H, o: H): H;
  mulScalar_(t: H, v: number): H;
  addcmul_(t: H, a: H, b: H, v: number): H;
  addcdiv_(t: H, a: H, b: H, v: number): H;
  copy_(t: H, src: H): H;
  zero_(t: H): H;
  fill_(t: H, v: number): H;
  clamp_(t: H, min?: Opt<number>, max?: Opt<number>): H;

  setRequiresGrad(t: H, on: boolean): H;
  requiresGrad(t: H): boolean;
  isLeaf(t: H): boolean;
  grad(t: H): H | null;
  setGrad(t: H, g?: Opt<H>): void;
  backward(t: H, gradient?: Opt<H>, retainGraph?: boolean): void;
  setGradEnabled(on: boolean): boolean;
  isGradEnabled(): boolean;

  setAutocast(device: 'cpu' | 'cuda', enabled: boolean, dtype: DType): void;
  autocastState(device: 'cpu' | 'cuda'): { enabled: boolean; dtype: DType };
  autocastNesting(delta: 1 | -1): number;

  setNumThreads(n: number): void;
  getNumThreads(): number;
  runtimeInfo(): {
    cudaAvailable: boolean;
    cudaDeviceCount: number;
    mkldnn: boolean;
    openmp: boolean;
    parallelInfo: string;
    threads: number;
  };
  blasInfo(): { library: string; openblasCore: string };
}

/** The compiled addon's path; throws with set-up advice when it is not built. */
export function addonPath(): string {
  const root = join(__dirname, '..', '..', '..');
  const candidates = [join(root, 'build/Release/simclr_native.node'), join(root, 'build/Debug/simclr_native.node')];
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new Error(
      `simclr-ts: the native addon is not built (looked for ${candidates[0]}). ` +
        'Run `npm install` (or `node scripts/setup.mjs --native`) in the simclr-ts folder; set LIBTORCH to a libtorch directory if none is installed.',
    );
  }
  return path;
}

function load(): NativeAddon {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const addon = require(addonPath()) as NativeAddon;
  // A kernel family chosen for OpenBLAS (by tuneProcess, a parent process or the user)
  // may compute wrong numbers rather than fail, so it is checked before anything uses it.
  // The probe child reports correctness itself instead.
  const core = process.env.OPENBLAS_CORETYPE;
  if (core && !isBlasProbe()) {
    const check = checkBlasProduct(addon);
    if (!check.correct) {
      const { library, openblasCore } = addon.blasInfo();
      const remembered = rememberedChoice()?.coreType === core;
      throw new Error(
        `simclr-ts: the BLAS (${library}${openblasCore ? `, OpenBLAS kernels ${openblasCore}` : ''}) computes a wrong float64 matrix product ` +
          `(error ${check.maxError}). Set OPENBLAS_CORETYPE to a kernel family this processor supports (e.g. Haswell), or ` +
          `${remembered ? 'remove the remembered choice in SIMCLR_CACHE (~/.cache/simclr-ts/blas-*.json)' : 'unset it to let OpenBLAS choose'}.`,
      );
    }
  }
  return addon;
}

let loaded: NativeAddon | null = null;
let failure: unknown = null;

/** Whether libtorch is loaded in this process yet (after it, OpenBLAS's kernels are fixed). */
export function isNativeLoaded(): boolean {
  return loaded !== null;
}

/** The addon, loaded on the first call. A failed load fails again the same way. */
export function getNative(): NativeAddon {
  if (loaded) return loaded;
  if (failure) throw failure;
  try {
    loaded = load();
  } catch (e) {
    failure = e;
    throw e;
  }
  return loaded;
}

/**
 * An object standing for the addon before it is loaded. Its prototype is a proxy: the
 * first string-keyed member read loads the addon and copies its members onto the object
 * itself, then the proxy is dropped, so later calls cost a plain property read (hot code
 * such as tensor.ts holds this object, not the addon).
 */
function lazyAddon(): NativeAddon {
  const stand = Object.create(null) as Record<string | symbol, unknown>;
  const fill = (): NativeAddon => {
    const addon = getNative();
    if (Object.getPrototypeOf(stand) !== Object.prototype) {
      for (const key of Reflect.ownKeys(addon)) {
        const d = Object.getOwnPropertyDescriptor(addon, key)!;
        // Accessors (the allocator state) keep reading the addon's current value.
        if (d.get) Object.defineProperty(stand, key, { enumerable: true, get: () => Reflect.get(addon, key) });
        else Object.defineProperty(stand, key, { enumerable: true, value: d.value });
      }
      Object.setPrototypeOf(stand, Object.prototype);
    }
    return addon;
  };
  const loader = new Proxy(Object.create(null) as object, {
    get: (_target, key) => (typeof key === 'string' ? Reflect.get(fill(), key) : undefined),
    has: (_target, key) => typeof key === 'string' && key in fill(),
  });
  Object.setPrototypeOf(stand, loader);
  return stand as unknown as NativeAddon;
}

/**
 * The addon's ops. Importing this module loads nothing: the first member used loads
 * libtorch (call tuneProcess() before that to choose OpenBLAS's kernels).
 */
export const native: NativeAddon = lazyAddon();
