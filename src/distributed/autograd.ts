// The collectives the method needs gradients through: the gathered projections of NT-Xent
// (ProcessGroup.sumWithGrad: sum over workers forward, sum of the gradient over workers
// backward) and synchronized batch norm (ProcessGroup.syncBatchNorm, fused).
import * as t from '../torch';
import type { Tensor } from '../torch';
import { BatchNorm, type Module } from '../nn';
import type { ProcessGroup } from './group';

/**
 * Every worker's rows of x, in rank order: [sum of counts, ...]. counts[r] is rank r's
 * row count (default: this worker's, on every rank). The gradient of this worker's rows
 * is the sum over workers of the gradient of its slice of the result.
 */
export function gatherWithGrad(group: ProcessGroup, x: Tensor, counts?: number[]): { all: Tensor; offset: number } {
  const n = x.shape[0]!;
  const sizes = counts ?? Array.from({ length: group.worldSize }, () => n);
  if (sizes.length !== group.worldSize || sizes[group.rank] !== n) {
    throw new Error(`gatherWithGrad: counts [${sizes.join(', ')}] must list every worker's rows, with this worker's (rank ${group.rank}) equal to ${n}`);
  }
  const offset = sizes.slice(0, group.rank).reduce((a, b) => a + b, 0);
  const total = sizes.reduce((a, b) => a + b, 0);
  return t.tidy(() => {
    const rest = x.shape.slice(1);
    const wide = x.dtype === 'float32' || x.dtype === 'float64' ? x : x.to('float32');
    const parts: Tensor[] = [];
    if (offset > 0) parts.push(t.zeros([offset, ...rest], { dtype: wide.dtype, device: wide.device }));
    parts.push(wide.contiguous());
    if (total - offset - n > 0) parts.push(t.zeros([total - offset - n, ...rest], { dtype: wide.dtype, device: wide.device }));
    const padded = parts.length === 1 ? parts[0]! : t.cat(parts, 0);
    return { all: group.sumWithGrad(padded), offset };
  });
}

/**
 * Batch norm whose training statistics are those of the whole global batch: the result and
 * its gradient are those of one batch norm over every worker's inputs. libtorch's fused
 * kernels do the work, with one collective forward (every worker's mean, variance and count
 * per channel, combined in float64) and one backward (sums of the gradient and of gradient x
 * normalised input): ProcessGroup.syncBatchNorm, native/dist.cc.
 */
export function syncBatchNorm(group: ProcessGroup): (x: Tensor, layer: BatchNorm) => Tensor {
  return (x, layer) =>
    t.tidy(() => {
      const { y, mean, variance, count: n } = group.syncBatchNorm(x, layer);
      t.noGrad(() => {
        const m = layer.momentum;
        layer.runningMean.mul_(1 - m).add_(mean.to(layer.runningMean.dtype), m);
        const unbiased = variance.mul(n > 1 ? n / (n - 1) : 1).to(layer.runningVar.dtype);
        layer.runningVar.mul_(1 - m).add_(unbiased, m);
      });
      return y;
    });
}

/**
 * How batch norm trains on several workers: with the statistics of the global batch (the
 * paper's; a collective per layer, forward and backward) or of each worker's own share.
 */
export type BatchNormScope = 'global' | 'local';

/** Makes every batch norm of the model synchronized over the group's workers in training mode (undo: null). */
export function useSyncBatchNorm(model: Module, group: ProcessGroup | null): number {
  const impl = group && group.worldSize > 1 ? syncBatchNorm(group) : null;
  let count = 0;
  for (const [, m] of model.namedModules()) {
    if (m instanceof BatchNorm) {
      m.trainingImpl = impl;
      count++;
    }
  }
  return count;
}
