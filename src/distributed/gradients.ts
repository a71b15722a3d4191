// Gradient averaging over workers after the backward pass, in buckets: the gradients are
// flattened into buckets of about `bucketBytes` (in reverse parameter order, the order the
// backward pass finishes them), every bucket's all-reduce is started at once (Gloo runs
// them on its own threads while the next bucket is flattened), then each is averaged and
// copied back.
import * as t from '../torch';
import type { Tensor } from '../torch';
import type { ProcessGroup, Pending } from './group';

/** PyTorch DDP's default bucket size. */
export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;

export interface BucketPlan {
  /** indices into the parameter list, per bucket */
  buckets: number[][];
}

/** Groups parameters (in reverse order) into buckets of at most `bucketBytes` (a parameter bigger than that gets its own). */
export function planBuckets(params: Tensor[], bucketBytes = DEFAULT_BUCKET_BYTES): BucketPlan {
  const buckets: number[][] = [];
  let current: number[] = [];
  let bytes = 0;
  for (let i = params.length - 1; i >= 0; i--) {
    const p = params[i]!;
    const size = p.numel * (p.dtype === 'float64' ? 8 : p.dtype === 'float32' ? 4 : 2);
    if (current.length && bytes + size > bucketBytes) {
      buckets.push(current);
      current = [];
      bytes = 0;
    }
    current.push(i);
    bytes += size;
  }
  if (current.length) buckets.push(current);
  return { buckets };
}

/**
 * Replaces each parameter's gradient by its mean over the workers. A parameter without a
 * gradient counts as zero (every worker must then agree on the bucket layout: a missing
 * gradient is filled with zeros, so the buckets stay the same everywhere). One that has no
 * gradient on any worker keeps none, as on one worker (each bucket carries, per parameter,
 * the count of workers with a gradient): the optimisers skip such a parameter, where a
 * zero gradient would still get weight decay and momentum.
 */
export function averageGradients(group: ProcessGroup, params: Tensor[], plan: BucketPlan = planBuckets(params)): void {
  if (group.worldSize === 1) return;
  t.tidy(() => {
    const started: { flat: Tensor; members: number[]; pending: Pending }[] = [];
    for (const members of plan.buckets) {
      // The gradients, then one number per parameter: 1 where this worker has a gradient
      // (summed, it says whether any worker had one).
      const flat = t.cat([
        ...members.map((i) => {
          const p = params[i]!;
          const g = p.grad;
          return (g ?? t.zerosLike(p)).detach().to('float32').reshape(-1);
        }),
        t.tensor(Float32Array.from(members, (i) => (params[i]!.grad ? 1 : 0)), [members.length]),
      ]);
      started.push({ flat, members, pending: group.allReduceStart(flat, 'sum') });
    }
    t.noGrad(() => {
      for (const { flat, members, pending } of started) {
        pending.wait();
        const present = flat.narrow(0, flat.shape[0]! - members.length, members.length).toArray() as number[];
        flat.mul_(1 / group.worldSize);
        let at = 0;
        for (const [j, i] of members.entries()) {
          const p = params[i]!;
          const part = flat.narrow(0, at, p.numel).reshape(p.shape).to(p.dtype);
          at += p.numel;
          const g = p.grad;
          if (g) g.copy_(part);
          else if (present[j]! > 0) p.grad = part.clone();
        }
      }
    });
  });
}

/** Makes every worker's parameters and buffers rank 0's (contiguous copies where the layout is another). */
export function broadcastWeights(group: ProcessGroup, model: { parameters(): Tensor[]; namedBuffers(): [string, Tensor][] }): void {
  t.noGrad(() => {
    for (const p of [...model.parameters(), ...model.namedBuffers().map(([, b]) => b)]) {
      if (p.isContiguous()) group.broadcast(p, 0);
      else t.tidy(() => p.copy_(group.broadcast(p.contiguous(), 0)));
    }
  });
}

/** A checksum of the parameters (and buffers) on this worker: a sum of |x| and a position-weighted sum, in float64. */
export function weightsChecksum(tensors: Tensor[]): [number, number] {
  return t.tidy(() => {
    let a = 0;
    let b = 0;
    tensors.forEach((x, i) => {
      const v = x.detach().to('float64').reshape(-1);
      a += v.abs().sum().item();
      b += v.mul(t.arange(1, v.numel + 1, 1, { dtype: 'float64' })).sum().item() * (i + 1);
    });
    return [a, b];
  });
}
