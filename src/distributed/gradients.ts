// Gradient averaging over workers, in buckets: the gradients are flattened into buckets of
// about `bucketBytes` (in reverse parameter order, the order the backward pass finishes
// them; the first one smaller, so that communication starts early), each bucket is summed
// over the workers, then averaged and copied back. Two ways with the same result:
// `averageGradients` after the backward pass (every bucket's all-reduce started at once,
// Gloo runs them on its own threads while the next is flattened), and `BackwardAverager`
// during it (each bucket's all-reduce starts as soon as its last gradient is final, as
// PyTorch DDP's Reducer does; native/dist.cc).
import * as t from '../torch';
import type { Tensor } from '../torch';
import type { GradientReducer, ProcessGroup, Pending } from './group';

/** PyTorch DDP's default bucket size. */
export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;
/** PyTorch DDP's first bucket (1 MiB): the last layers' gradients leave before the backward pass ends. */
export const DEFAULT_FIRST_BUCKET_BYTES = 1024 * 1024;

export interface BucketPlan {
  /** indices into the parameter list, per bucket */
  buckets: number[][];
}

/**
 * Groups parameters (in reverse order) into buckets of at most `bucketBytes`, the first of
 * at most `firstBucketBytes` (a parameter bigger than its bucket's cap gets its own).
 */
export function planBuckets(params: Tensor[], bucketBytes = DEFAULT_BUCKET_BYTES, firstBucketBytes = Math.min(bucketBytes, DEFAULT_FIRST_BUCKET_BYTES)): BucketPlan {
  const buckets: number[][] = [];
  let current: number[] = [];
  let bytes = 0;
  for (let i = params.length - 1; i >= 0; i--) {
    const p = params[i]!;
    const size = p.numel * (p.dtype === 'float64' ? 8 : p.dtype === 'float32' ? 4 : 2);
    if (current.length && bytes + size > (buckets.length ? bucketBytes : firstBucketBytes)) {
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
      // The gradients (float32, or float64 where a member is), then one number per parameter:
      // 1 where this worker has a gradient (summed, it says whether any worker had one).
      const dtype = members.some((i) => params[i]!.dtype === 'float64') ? 'float64' : 'float32';
      const flat = t.cat([
        ...members.map((i) => {
          const p = params[i]!;
          const g = p.grad;
          return (g ?? t.zerosLike(p)).detach().to(dtype).reshape(-1);
        }),
        t.tensor(Float32Array.from(members, (i) => (params[i]!.grad ? 1 : 0)), [members.length], { device: params[members[0]!]!.device }).to(dtype),
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

/** Whether pretraining overlaps the averaging with the backward pass: yes unless SIMCLR_OVERLAP=0. */
export function overlapFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.SIMCLR_OVERLAP !== '0';
}

/**
 * The overlapped averaging for one parameter list, made on first use and made again when
 * the list changes (other tensors). Use: arm(params) before loss.backward(), finish() after.
 */
export class BackwardAverager {
  private reducer: GradientReducer | null = null;
  /** the native tensors the reducer hooks (a parameter moved by Module.to keeps its object, not its tensor) */
  private hooked: unknown[] = [];
  /** armed for a list without trainable parameters: nothing to average */
  private idle = false;

  constructor(
    private readonly group: ProcessGroup,
    private readonly bucketBytes = DEFAULT_BUCKET_BYTES,
    private readonly firstBucketBytes = Math.min(bucketBytes, DEFAULT_FIRST_BUCKET_BYTES),
  ) {}

  arm(params: Tensor[]): void {
    // Frozen parameters never get a gradient (no worker has one: averageGradients leaves
    // them without one too), and have no accumulator to hook.
    const live = params.filter((p) => p.requiresGrad);
    this.idle = live.length === 0;
    if (this.idle) return;
    const r = this.reducer;
    if (!r || r.params.length !== live.length || live.some((p, i) => p.h !== this.hooked[i])) {
      r?.dispose();
      this.reducer = null;
      this.reducer = this.group.gradientReducer(live, planBuckets(live, this.bucketBytes, this.firstBucketBytes).buckets);
      this.hooked = live.map((p) => p.h);
    }
    this.reducer!.arm();
  }

  finish(): void {
    if (this.idle) return;
    if (!this.reducer) throw new Error('BackwardAverager.finish() before arm()');
    this.reducer.finish();
  }

  dispose(): void {
    this.reducer?.dispose();
    this.reducer = null;
  }
}

/** Makes every worker's parameters and buffers rank 0's (contiguous copies where the layout is another). */
export function broadcastWeights(group: ProcessGroup, model: { parameters(): Tensor[]; namedBuffers(): [string, Tensor][] }): void {
  fromRankZero(group, [...model.parameters(), ...model.namedBuffers().map(([, b]) => b)]);
}

/** Rank 0's buffers (batch norm's running statistics) on every worker. */
export function broadcastBuffers(group: ProcessGroup, model: { namedBuffers(): [string, Tensor][] }): void {
  fromRankZero(group, model.namedBuffers().map(([, b]) => b));
}

function fromRankZero(group: ProcessGroup, tensors: Tensor[]): void {
  t.noGrad(() => {
    for (const p of tensors) {
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
      b += v.mul(t.arange(1, v.numel + 1, 1, { dtype: 'float64', device: v.device })).sum().item() * (i + 1);
    });
    return [a, b];
  });
}
