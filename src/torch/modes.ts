// Thread-local modes of libtorch (gradients, autocast), threads, seeds and runtime facts.
import { native as n, type DType } from './native';
import { Tensor, wrap } from './tensor';

/** Runs fn with gradient recording off (torch.no_grad). */
export function noGrad<R>(fn: () => R): R {
  const previous = n.setGradEnabled(false);
  try {
    return fn();
  } finally {
    n.setGradEnabled(previous);
  }
}

export function isGradEnabled(): boolean {
  return n.isGradEnabled();
}

export interface AutocastOptions {
  /** 'cpu' (bfloat16) or 'cuda' (float16 or bfloat16). */
  deviceType?: 'cpu' | 'cuda';
  dtype?: DType;
  enabled?: boolean;
}

/**
 * Runs fn under libtorch's automatic mixed precision (torch.autocast): matmuls and
 * convolutions run in the lower precision, reductions and losses stay in float32.
 */
export function autocast<R>(fn: () => R, o: AutocastOptions = {}): R {
  const device = o.deviceType ?? 'cpu';
  const dtype = o.dtype ?? (device === 'cpu' ? 'bfloat16' : 'float16');
  const previous = n.autocastState(device);
  n.setAutocast(device, o.enabled ?? true, dtype);
  n.autocastNesting(1);
  try {
    return fn();
  } finally {
    n.autocastNesting(-1);
    n.setAutocast(device, previous.enabled, previous.dtype);
  }
}

export function setNumThreads(threads: number): void {
  n.setNumThreads(threads);
}

export function getNumThreads(): number {
  return n.getNumThreads();
}

/** Seeds libtorch's default generators (CPU and CUDA): one seed makes a CPU run repeatable. */
export function manualSeed(seed: number): void {
  n.manualSeed(seed);
}

/** The CPU generator's state as a uint8 tensor, for checkpoints. */
export function getRngState(): Tensor {
  return wrap(n.getRngState());
}

export function setRngState(state: Tensor): void {
  n.setRngState(state.h);
}

/** Tensors alive in the addon now (not yet disposed or collected). */
export function liveTensors(): number {
  return n.liveTensors();
}

/** Bytes held by live tensors (host and GPU memory), as reported to V8. */
export function liveBytes(): number {
  return n.liveBytes();
}

export interface RuntimeInfo {
  libtorchVersion: string;
  cudaBuild: boolean;
  builtFrom: string;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  devices: string[];
  threads: number;
  mkldnn: boolean;
  openmp: boolean;
  allocator: string;
}

export function runtimeInfo(): RuntimeInfo {
  const build = JSON.parse(n.buildInfo) as { version?: string; cuda?: boolean; source?: string };
  const rt = n.runtimeInfo();
  const devices = ['cpu', ...Array.from({ length: rt.cudaDeviceCount }, (_, i) => `cuda:${i}`)];
  return {
    libtorchVersion: build.version ?? n.headerVersion,
    cudaBuild: build.cuda ?? false,
    builtFrom: build.source ?? 'unknown',
    cudaAvailable: rt.cudaAvailable,
    cudaDeviceCount: rt.cudaDeviceCount,
    devices,
    threads: rt.threads,
    mkldnn: rt.mkldnn,
    openmp: rt.openmp,
    allocator: n.allocator,
  };
}
