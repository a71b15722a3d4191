// How models compute: bfloat16 autocast or float32, channels-last or NCHW. Chosen once per
// process from what the machine has (the fastest correct settings are the defaults);
// `--precision`, `--channels-last` and `--device` (or useCompute) override.
import { cpuFlags } from './blas';
import { native as n } from './native';

export type Precision = 'fp32' | 'bf16';

export interface ComputeOptions {
  /** 'auto' (default): bf16 where the processor has AMX or AVX512-BF16, else fp32. */
  precision?: Precision | 'auto';
  /** 'auto' (default): on wherever oneDNN (mkldnn) runs the convolutions. */
  channelsLast?: 'on' | 'off' | 'auto';
  /** Where models and batches live: 'cpu' (default) or 'cuda:N' (needs a CUDA libtorch). */
  device?: string;
}

export interface ComputeSettings {
  precision: Precision;
  channelsLast: boolean;
  /** 'cpu' or 'cuda:N': models, batches, views and optimiser state live there. */
  device: string;
  /** One line each: why this precision and memory format were chosen. */
  why: { precision: string; channelsLast: string };
}

/** The settings for these options on this processor; `mkldnn` (whether libtorch has oneDNN) is asked of libtorch unless given. */
export function resolveCompute(o: ComputeOptions = {}, flags: Set<string> = cpuFlags(), mkldnn: boolean = n.runtimeInfo().mkldnn): ComputeSettings {
  // As libtorch names it on tensors ('cuda' alone is GPU 0), so that comparing names finds the tensors already there.
  const device = o.device === 'cuda' ? 'cuda:0' : (o.device ?? 'cpu');
  const gpu = device.startsWith('cuda');
  let precision: Precision;
  let whyPrecision: string;
  if (o.precision && o.precision !== 'auto') {
    precision = o.precision;
    whyPrecision = 'set by --precision';
  } else if (gpu) {
    precision = 'bf16';
    whyPrecision = 'on a GPU, bfloat16 autocast runs the convolutions and matrix products on tensor cores (float32 keeps the same range)';
  } else if (!mkldnn) {
    precision = 'fp32';
    whyPrecision = 'libtorch was built without oneDNN, so bfloat16 has no fast kernels';
  } else if (flags.has('amx_bf16')) {
    precision = 'bf16';
    whyPrecision = 'the processor has AMX (amx_bf16): oneDNN multiplies bfloat16 tiles several times faster than float32';
  } else if (flags.has('avx512_bf16')) {
    precision = 'bf16';
    whyPrecision = 'the processor has AVX512-BF16: bfloat16 dot products run at twice the float32 rate';
  } else {
    precision = 'fp32';
    whyPrecision = 'the processor has no bfloat16 instructions, so bfloat16 would be emulated and slower';
  }
  let channelsLast: boolean;
  let whyLayout: string;
  if (o.channelsLast && o.channelsLast !== 'auto') {
    channelsLast = o.channelsLast === 'on';
    whyLayout = 'set by --channels-last';
  } else if (gpu) {
    channelsLast = true;
    whyLayout = "cuDNN's tensor-core convolutions work in NHWC: channels-last saves a transpose per layer";
  } else {
    channelsLast = mkldnn;
    whyLayout = mkldnn ? "oneDNN's convolutions work in NHWC: channels-last saves a reorder per layer" : 'without oneDNN, NCHW kernels are the fast ones';
  }
  return { precision, channelsLast, device, why: { precision: whyPrecision, channelsLast: whyLayout } };
}

let current: ComputeSettings | null = null;

/** Sets how this process's models compute from now on (a GPU becomes the current device); returns the settings chosen. */
export function useCompute(o: ComputeOptions = {}): ComputeSettings {
  current = resolveCompute(o);
  if (current.device.startsWith('cuda')) n.setCurrentDevice(current.device);
  return current;
}

/** The settings in force (resolved from the machine on first use). */
export function computeSettings(): ComputeSettings {
  return (current ??= resolveCompute());
}

/**
 * x on the settings' device: itself when it is there already (batches come from the
 * loaders on the CPU; a step moves them once, before the views are made).
 */
export function onComputeDevice<T extends { device: string; to(device: string): T }>(x: T, s: ComputeSettings = computeSettings()): T {
  return x.device === s.device ? x : x.to(s.device);
}
