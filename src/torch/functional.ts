// Neural-network operations as functions of tensors (the torch.nn.functional of this package).
import { native as n, type Reduction } from './native';
import { Tensor, wrap } from './tensor';

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : v);

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

export function conv2d(input: Tensor, weight: Tensor, bias: Tensor | null = null, o: Conv2dOptions = {}): Tensor {
  return wrap(n.conv2d(input.h, weight.h, bias?.h ?? null, pair(o.stride ?? 1), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.groups ?? 1));
}

export function linear(input: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return wrap(n.linear(input.h, weight.h, bias?.h ?? null));
}

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  runningMean?: Tensor | null;
  runningVar?: Tensor | null;
  /** Normalise with batch statistics and update the running ones (default false). */
  training?: boolean;
  momentum?: number;
  eps?: number;
}

/** Batch norm over dim 1; in training the running statistics are updated in place. */
export function batchNorm(input: Tensor, o: BatchNormOptions = {}): Tensor {
  return wrap(
    n.batchNorm(input.h, o.weight?.h, o.bias?.h, o.runningMean?.h, o.runningVar?.h, o.training ?? false, o.momentum ?? 0.1, o.eps ?? 1e-5),
  );
}

export interface PoolOptions {
  stride?: Pair;
  padding?: Pair;
  ceilMode?: boolean;
}

export function maxPool2d(input: Tensor, kernel: Pair, o: PoolOptions & { dilation?: Pair } = {}): Tensor {
  return wrap(n.maxPool2d(input.h, pair(kernel), pair(o.stride ?? kernel), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.ceilMode ?? false));
}

export function avgPool2d(input: Tensor, kernel: Pair, o: PoolOptions & { countIncludePad?: boolean } = {}): Tensor {
  return wrap(n.avgPool2d(input.h, pair(kernel), pair(o.stride ?? kernel), pair(o.padding ?? 0), o.ceilMode ?? false, o.countIncludePad ?? true));
}

export function adaptiveAvgPool2d(input: Tensor, size: Pair): Tensor {
  return wrap(n.adaptiveAvgPool2d(input.h, pair(size)));
}

export const relu = (x: Tensor): Tensor => x.relu();
export const sigmoid = (x: Tensor): Tensor => x.sigmoid();
export const softmax = (x: Tensor, dim: number): Tensor => x.softmax(dim);
export const logSoftmax = (x: Tensor, dim: number): Tensor => x.logSoftmax(dim);

export interface CrossEntropyOptions {
  weight?: Tensor | null;
  reduction?: Reduction;
  ignoreIndex?: number;
  /** 0 (off) by default. */
  labelSmoothing?: number;
}

/** Cross-entropy of logits against int64 class indices (or class probabilities of the logits' shape). */
export function crossEntropy(logits: Tensor, target: Tensor, o: CrossEntropyOptions = {}): Tensor {
  return wrap(n.crossEntropy(logits.h, target.h, o.weight?.h ?? null, o.reduction ?? 'mean', o.ignoreIndex ?? -100, o.labelSmoothing ?? 0));
}

export function nllLoss(logProbs: Tensor, target: Tensor, o: Omit<CrossEntropyOptions, 'labelSmoothing'> = {}): Tensor {
  return wrap(n.nllLoss(logProbs.h, target.h, o.weight?.h ?? null, o.reduction ?? 'mean', o.ignoreIndex ?? -100));
}

/** x / max(||x||_p, eps) along dim, as torch.nn.functional.normalize. */
export function normalize(x: Tensor, { p = 2, dim = 1, eps = 1e-12 } = {}): Tensor {
  const norm = x.norm(p, dim, true);
  const denom = norm.clampMin(eps);
  norm.dispose();
  const out = x.div(denom);
  denom.dispose();
  return out;
}

/** Sampling grid for a batch of 2x3 affine matrices theta (N,2,3), for gridSample. */
export function affineGrid(theta: Tensor, size: number[], alignCorners = false): Tensor {
  return wrap(n.affineGrid(theta.h, size, alignCorners));
}

export interface GridSampleOptions {
  mode?: 'bilinear' | 'nearest' | 'bicubic';
  paddingMode?: 'zeros' | 'border' | 'reflection';
  alignCorners?: boolean;
}

export function gridSample(input: Tensor, grid: Tensor, o: GridSampleOptions = {}): Tensor {
  return wrap(n.gridSample(input.h, grid.h, o.mode ?? 'bilinear', o.paddingMode ?? 'zeros', o.alignCorners ?? false));
}

/** Resizes a batch (N,C,H,W) to size [h, w]. */
export function interpolate(input: Tensor, size: [number, number], o: { mode?: 'bilinear' | 'bicubic' | 'nearest' | 'area'; alignCorners?: boolean } = {}): Tensor {
  return wrap(n.interpolate(input.h, size, o.mode ?? 'bilinear', o.alignCorners ?? false));
}
