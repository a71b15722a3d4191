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
  /** Each op's parameter list from the op table (native/ops.cc); test/op-table.test.ts holds the declarations below to it. */
  readonly opParams: Readonly<Record<string, string>>;
  dispose(tensor: H): boolean;
  isDisposed(tensor: H): boolean;
  /** Test hook: the tensor's slot as if reused 33 million times; returns its new handle (the old one dies). */
  ageSlotForTest(tensor: H): H;
  liveTensors(): number;
  liveBytes(): number;
  shape(tensor: H): number[];
  strides(tensor: H): number[];
  dtype(tensor: H): DType;
  device(tensor: H): string;
  numel(tensor: H): number;
  item(tensor: H): number;
  isContiguous(tensor: H, memoryFormat?: MemoryFormat): boolean;
  fromBytes(bytes: ArrayBufferView | ArrayBuffer, shape: number[], dtype: DType): H;
  toBytes(tensor: H): Buffer;

  zeros(shape: number[], dtype?: DType, device?: string): H;
  ones(shape: number[], dtype?: DType, device?: string): H;
  empty(shape: number[], dtype?: DType, device?: string): H;
  full(shape: number[], value: number, dtype?: DType, device?: string): H;
  arange(start: number, end: number, step: number, dtype?: DType, device?: string): H;
  linspace(start: number, end: number, steps: number, dtype?: DType, device?: string): H;
  eye(n: number, dtype?: DType, device?: string): H;
  zerosLike(tensor: H): H;
  onesLike(tensor: H): H;
  fullLike(tensor: H, value: number): H;
  rand(shape: number[], dtype?: DType, device?: string): H;
  randn(shape: number[], dtype?: DType, device?: string): H;
  randint(low: number, high: number, shape: number[], dtype?: Opt<DType>, device?: string): H;
  randperm(n: number, device?: string): H;
  bernoulli(probabilities: H): H;
  bernoulliP(like: H, p: number): H;
  normal_(tensor: H, mean: number, std: number): H;
  uniform_(tensor: H, low: number, high: number): H;
  manualSeed(seed: number): void;
  getRngState(): H;
  setRngState(state: H): void;

  toDtype(tensor: H, dtype: DType): H;
  toDevice(tensor: H, device: string): H;
  contiguous(tensor: H, memoryFormat?: MemoryFormat): H;
  clone(tensor: H, memoryFormat?: MemoryFormat): H;
  detach(tensor: H): H;
  reshape(tensor: H, shape: number[]): H;
  view(tensor: H, shape: number[]): H;
  permute(tensor: H, dims: number[]): H;
  transpose(tensor: H, dim0: number, dim1: number): H;
  flatten(tensor: H, startDim: number, endDim: number): H;
  squeeze(tensor: H, dim: number): H;
  unsqueeze(tensor: H, dim: number): H;
  expand(tensor: H, shape: number[]): H;
  repeat(tensor: H, repeats: number[]): H;
  narrow(tensor: H, dim: number, start: number, length: number): H;
  slice(tensor: H, dim: number, start: number, end: number, step: number): H;
  select(tensor: H, dim: number, index: number): H;
  indexSelect(tensor: H, dim: number, index: H): H;
  gather(tensor: H, dim: number, index: H): H;
  scatter(tensor: H, dim: number, index: H, source: H): H;
  scatterAdd(tensor: H, dim: number, index: H, source: H): H;
  maskedSelect(tensor: H, mask: H): H;
  maskedFill(tensor: H, mask: H, value: number): H;
  cat(tensors: H[], dim: number): H;
  stack(tensors: H[], dim: number): H;
  chunk(tensor: H, chunks: number, dim: number): H[];
  split(tensor: H, size: number, dim: number): H[];
  flip(tensor: H, dims: number[]): H;
  roll(tensor: H, shifts: number[], dims: number[]): H;
  diagonal(tensor: H, offset: number, dim0: number, dim1: number): H;
  tril(tensor: H, diagonal: number): H;
  oneHot(labels: H, classes: number): H;

  add(a: H, b: H, alpha?: number): H;
  sub(a: H, b: H, alpha?: number): H;
  mul(a: H, b: H): H;
  div(a: H, b: H): H;
  addScalar(tensor: H, value: number): H;
  mulScalar(tensor: H, value: number): H;
  divScalar(tensor: H, value: number): H;
  rsubScalar(tensor: H, value: number): H;
  pow(tensor: H, exponent: number): H;
  powTensor(tensor: H, exponent: H): H;
  neg(tensor: H): H;
  exp(tensor: H): H;
  log(tensor: H): H;
  sqrt(tensor: H): H;
  rsqrt(tensor: H): H;
  abs(tensor: H): H;
  tanh(tensor: H): H;
  sin(tensor: H): H;
  cos(tensor: H): H;
  floor(tensor: H): H;
  round(tensor: H): H;
  remainder(tensor: H, divisor: number): H;
  maximum(a: H, b: H): H;
  minimum(a: H, b: H): H;
  clamp(tensor: H, min?: Opt<number>, max?: Opt<number>): H;
  clampTensor(tensor: H, min?: Opt<H>, max?: Opt<H>): H;
  where(condition: H, a: H, b: H): H;
  lerp(start: H, end: H, weight: H): H;
  compare(a: H, op: CompareOp, b: H): H;
  compareScalar(a: H, op: CompareOp, value: number): H;
  logicalNot(tensor: H): H;
  logicalAnd(a: H, b: H): H;

  sumAll(tensor: H): H;
  sum(tensor: H, dims: number[], keepdim: boolean): H;
  meanAll(tensor: H): H;
  mean(tensor: H, dims: number[], keepdim: boolean): H;
  var(tensor: H, dims: number[], unbiased: boolean, keepdim: boolean): H;
  norm(tensor: H, p: number, dims: number[], keepdim: boolean): H;
  amax(tensor: H, dims: number[], keepdim: boolean): H;
  amin(tensor: H, dims: number[], keepdim: boolean): H;
  maxDim(tensor: H, dim: number, keepdim: boolean): [H, H];
  argmax(tensor: H, dim: number, keepdim: boolean): H;
  logsumexp(tensor: H, dims: number[], keepdim: boolean): H;
  topk(tensor: H, k: number, dim: number, largest: boolean, sorted: boolean): [H, H];
  sort(tensor: H, dim: number, descending: boolean): [H, H];

  matmul(a: H, b: H): H;
  linear(input: H, weight: H, bias?: Opt<H>): H;
  conv2d(input: H, weight: H, bias: Opt<H>, stride: number[], padding: number[], dilation: number[], groups: number): H;
  batchNorm(input: H, weight: Opt<H>, bias: Opt<H>, runningMean: Opt<H>, runningVar: Opt<H>, training: boolean, momentum: number, eps: number): H;
  maxPool2d(input: H, kernel: number[], stride: number[], padding: number[], dilation: number[], ceilMode: boolean): H;
  avgPool2d(input: H, kernel: number[], stride: number[], padding: number[], ceilMode: boolean, countIncludePad: boolean): H;
  adaptiveAvgPool2d(input: H, outputSize: number[]): H;
  relu(tensor: H): H;
  relu_(tensor: H): H;
  sigmoid(tensor: H): H;
  softmax(tensor: H, dim: number): H;
  logSoftmax(tensor: H, dim: number): H;
  crossEntropy(logits: H, target: H, weight?: Opt<H>, reduction?: Reduction, ignoreIndex?: number, labelSmoothing?: number): H;
  nllLoss(logProbs: H, target: H, weight?: Opt<H>, reduction?: Reduction, ignoreIndex?: number): H;
  affineGrid(theta: H, size: number[], alignCorners: boolean): H;
  gridSample(input: H, grid: H, mode?: string, paddingMode?: string, alignCorners?: boolean): H;
  interpolate(input: H, size: number[], mode?: string, alignCorners?: boolean): H;

  add_(tensor: H, other: H, alpha?: number): H;
  addScalar_(tensor: H, value: number): H;
  mul_(tensor: H, other: H): H;
  mulScalar_(tensor: H, value: number): H;
  addcmul_(tensor: H, a: H, b: H, value: number): H;
  addcdiv_(tensor: H, a: H, b: H, value: number): H;
  copy_(tensor: H, source: H): H;
  zero_(tensor: H): H;
  fill_(tensor: H, value: number): H;
  clamp_(tensor: H, min?: Opt<number>, max?: Opt<number>): H;

  setRequiresGrad(tensor: H, requiresGrad: boolean): H;
  requiresGrad(tensor: H): boolean;
  isLeaf(tensor: H): boolean;
  grad(tensor: H): H | null;
  setGrad(tensor: H, grad?: Opt<H>): void;
  backward(tensor: H, gradient?: Opt<H>, retainGraph?: boolean): void;
  setGradEnabled(enabled: boolean): boolean;
  isGradEnabled(): boolean;

  setAutocast(deviceType: 'cpu' | 'cuda', enabled: boolean, dtype: DType): void;
  autocastState(deviceType: 'cpu' | 'cuda'): { enabled: boolean; dtype: DType };
  autocastNesting(delta: 1 | -1): number;

  setNumThreads(threads: number): void;
  getNumThreads(): number;
  setCurrentDevice(device: string): void;
  runtimeInfo(): {
    cudaAvailable: boolean;
    cudaDeviceCount: number;
    mkldnn: boolean;
    openmp: boolean;
    parallelInfo: string;
    threads: number;
  };
  blasInfo(): { library: string; openblasCore: string };

  // ---- collectives (native/dist.cc): c10d's TCPStore, a Gloo process group, work items
  /** Whether the addon was built with c10d's Gloo backend. */
  distAvailable(): boolean;
  distStoreOpen(host: string, port: number, isServer: boolean, timeoutMs: number): StoreId;
  /** timeoutMs: how long a get or wait without its own timeout waits for a key (c10d's default, 300 s, when left out). */
  distFileStoreOpen(path: string, worldSize: number, timeoutMs?: number): StoreId;
  distStorePort(store: StoreId): number;
  distStoreSet(store: StoreId, key: string, value: string): void;
  distStoreGet(store: StoreId, key: string): string;
  distStoreAdd(store: StoreId, key: string, delta: number): number;
  distStoreCheck(store: StoreId, key: string): boolean;
  distStoreWait(store: StoreId, key: string, timeoutMs: number): void;
  distStoreClose(store: StoreId): void;
  distGroupNew(store: StoreId, rank: number, worldSize: number, timeoutMs: number, bindHost: string, threads: number): GroupId;
  distGroupDestroy(group: GroupId): void;
  distAllReduce(group: GroupId, tensor: H, op: 'sum' | 'max' | 'min' | 'product'): WorkId;
  distAllGather(group: GroupId, outputs: H[], tensor: H): WorkId;
  distBroadcast(group: GroupId, tensor: H, root: number): WorkId;
  distBarrier(group: GroupId): WorkId;
  distWait(work: WorkId, timeoutMs: number): void;
  distPending(): number;
  distSumWithGrad(group: GroupId, tensor: H, timeoutMs: number): H;
  distSumNow(group: GroupId, tensor: H, timeoutMs: number): H;
  /** Synchronized batch norm (training): [y, mean, biased variance, count] over every worker's batch. */
  distSyncBatchNorm(group: GroupId, input: H, weight: H | null, bias: H | null, eps: number, timeoutMs: number): [H, H, H, H];
  /** Bytes handed to collectives by kind, and ms spent waiting for them, since the process started. */
  distCounters(): DistCounters;
  /** Gradient averaging overlapped with the backward pass: params in bucket order, bucketSizes parameters per bucket. */
  distReducerNew(group: GroupId, params: H[], bucketSizes: number[]): ReducerId;
  distReducerArm(reducer: ReducerId): void;
  distReducerFinish(reducer: ReducerId, timeoutMs: number): void;
  distReducerDrop(reducer: ReducerId): void;
}

export interface DistCounters {
  waitMs: number;
  collectives: number;
  allReduceBytes: number;
  allGatherBytes: number;
  broadcastBytes: number;
  sumWithGradBytes: number;
  gradientBytes: number;
  syncBatchNormBytes: number;
}

/** A TCPStore, a process group and a started collective, in the addon's registries. */
export type StoreId = number & { readonly __brand: 'StoreId' };
export type GroupId = number & { readonly __brand: 'GroupId' };
export type WorkId = number & { readonly __brand: 'WorkId' };
export type ReducerId = number & { readonly __brand: 'ReducerId' };

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
