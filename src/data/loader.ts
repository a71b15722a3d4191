// Batches for training: shuffled epochs from a seed, drop-last for pretraining, uint8
// batches gathered from one tensor of the whole set (a memcpy per batch), turned to
// float on the training device by the caller.
import * as t from '../torch';
import type { Tensor } from '../torch';
import type { ImageDataset } from './dataset';
import { seededRandom, shuffleInPlace } from './subset';

export interface LoaderOptions {
  batchSize: number;
  seed?: number;
  shuffle?: boolean;
  /** Drop the last short batch (pretraining: NT-Xent wants full batches). Default false. */
  dropLast?: boolean;
  /** Only these images (e.g. a labeled subset). Default: all. */
  indices?: number[];
  /**
   * Data-parallel workers: each batch is the worker's contiguous share of the global batch
   * (batchSize is the global batch), so only its own images are gathered.
   */
  shard?: { rank: number; worldSize: number };
}

/** Rows of each worker in a global batch of `total`: as even as possible, the first ones one more. */
export function shardSizes(total: number, worldSize: number): number[] {
  return Array.from({ length: worldSize }, (_, r) => Math.floor(total / worldSize) + (r < total % worldSize ? 1 : 0));
}

export interface Batch {
  /** uint8 [B, C, S, S] */
  images: Tensor;
  /** int64 [B], or null when unlabeled */
  labels: Tensor | null;
  /** positions in the data set */
  indices: number[];
  /** With workers: each worker's row count in this global batch (this worker's rows are `indices`). */
  counts?: number[];
}

export class BatchLoader {
  private readonly all: Tensor;
  private readonly labels: Tensor | null;
  private readonly pool: number[];

  constructor(
    readonly data: ImageDataset,
    readonly options: LoaderOptions,
  ) {
    if (!(options.batchSize >= 1)) throw new Error(`batch size must be at least 1, got ${options.batchSize}`);
    this.all = t.keep(t.fromBytes(data.pixels, [data.count, data.channels, data.size, data.size], 'uint8'));
    this.labels = data.labels ? t.keep(t.tensor(Float64Array.from(data.labels), undefined, { dtype: 'int64' })) : null;
    this.pool = options.indices ?? Array.from({ length: data.count }, (_, i) => i);
    if (options.dropLast && this.pool.length < options.batchSize) {
      throw new Error(`${data.source}: ${this.pool.length} images are fewer than one batch of ${options.batchSize}`);
    }
  }

  batchesPerEpoch(): number {
    const n = this.pool.length / this.options.batchSize;
    return this.options.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** The order of epoch e: a shuffle seeded by (seed, e), so a resumed run sees the same batches. */
  order(epoch: number): number[] {
    const order = [...this.pool];
    if (this.options.shuffle ?? true) shuffleInPlace(order, seededRandom(((this.options.seed ?? 0) * 1000003 + epoch) >>> 0));
    return order;
  }

  private cachedOrder: { epoch: number; order: number[] } | null = null;

  /** Batch k of epoch e, its tensors made in the caller's scope (the step's). */
  batch(epoch: number, k: number): Batch {
    if (this.cachedOrder?.epoch !== epoch) this.cachedOrder = { epoch, order: this.order(epoch) };
    const b = this.options.batchSize;
    let indices = this.cachedOrder.order.slice(k * b, (k + 1) * b);
    const shard = this.options.shard;
    const counts = shard ? shardSizes(indices.length, shard.worldSize) : undefined;
    if (shard && counts) {
      const from = counts.slice(0, shard.rank).reduce((x, y) => x + y, 0);
      indices = indices.slice(from, from + counts[shard.rank]!);
    }
    return t.tidy(() => {
      const idx = t.tensor(Float64Array.from(indices), undefined, { dtype: 'int64' });
      return { images: this.all.indexSelect(0, idx), labels: this.labels ? this.labels.indexSelect(0, idx) : null, indices, ...(counts ? { counts } : {}) };
    });
  }

  /** Batches of epoch e from batch `from` on; each batch's tensors belong to the caller's scope. */
  *epoch(epoch: number, from = 0): Generator<Batch> {
    for (let k = from; k < this.batchesPerEpoch(); k++) yield this.batch(epoch, k);
  }

  dispose(): void {
    this.all.dispose();
    this.labels?.dispose();
  }
}
