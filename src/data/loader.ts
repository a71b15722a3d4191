// Batches for training: shuffled epochs from a seed, drop-last for pretraining. In-memory
// data sets gather uint8 batches from one tensor of the whole set (a memcpy per batch);
// stored ones (image folders) are read by offset from their shards on a worker thread,
// a few batches ahead of the step that needs them (`load`), so reading overlaps compute.
import * as t from '../torch';
import type { Tensor } from '../torch';
import { hostTensor, readImages, type ImageDataset } from './dataset';
import { Prefetcher } from './store/prefetch';
import type { HostBatch } from './store/stored';
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
   * (batchSize is the global batch), so only its own images are read.
   */
  shard?: { rank: number; worldSize: number };
  /** Stored data sets: batches read ahead on a worker thread (the queue's bound). Default 3; 0 reads on the calling thread. */
  prefetch?: number;
}

/** Rows of each worker in a global batch of `total`: as even as possible, the first ones one more. */
export function shardSizes(total: number, worldSize: number): number[] {
  return Array.from({ length: worldSize }, (_, r) => Math.floor(total / worldSize) + (r < total % worldSize ? 1 : 0));
}

/** A worker's contiguous share of a global batch's images, and every worker's count. */
export function shareOf(indices: number[], shard: { rank: number; worldSize: number }): { indices: number[]; counts: number[] } {
  const counts = shardSizes(indices.length, shard.worldSize);
  const from = counts.slice(0, shard.rank).reduce((x, y) => x + y, 0);
  return { indices: indices.slice(from, from + counts[shard.rank]!), counts };
}

export interface Batch {
  /** uint8 [B, C, H, W]: S x S frames, or stored images on a canvas (see extents) */
  images: Tensor;
  /** [h0, w0, ...]: each stored image's extent on the canvas; null when each fills it */
  extents: Int32Array | null;
  /** int64 [B], or null when unlabeled */
  labels: Tensor | null;
  /** positions in the data set */
  indices: number[];
  /** With workers: each worker's row count in this global batch (this worker's rows are `indices`). */
  counts?: number[];
}

/** A batch read on the host, not yet a tensor: what `load` resolves to. */
export interface LoadedBatch {
  epoch: number;
  k: number;
  indices: number[];
  counts?: number[];
  /** the images read (null for in-memory sets, gathered by `batchFrom`) */
  host: HostBatch | null;
}

export class BatchLoader {
  private readonly all: Tensor | null;
  private readonly labels: Tensor | null;
  private readonly pool: number[];
  private prefetcher: Prefetcher | null = null;

  constructor(
    readonly data: ImageDataset,
    readonly options: LoaderOptions,
  ) {
    if (!(options.batchSize >= 1)) throw new Error(`batch size must be at least 1, got ${options.batchSize}`);
    this.all = data.stored ? null : t.keep(t.fromBytes(data.pixels!, [data.count, data.channels, data.size, data.size], 'uint8'));
    this.labels = data.labels ? t.keep(t.tensor(Float64Array.from(data.labels), undefined, { dtype: 'int64' })) : null;
    this.pool = options.indices ?? Array.from({ length: data.count }, (_, i) => i);
    if (options.dropLast && this.pool.length < options.batchSize) {
      throw new Error(`${data.source}: ${this.pool.length} images are fewer than one batch of ${options.batchSize}`);
    }
  }

  /**
   * Batches of an epoch. Kept, a last batch of a single image joins the one before it:
   * batch norm cannot train on one image (its running variance would become NaN).
   */
  batchesPerEpoch(): number {
    const n = this.pool.length / this.options.batchSize;
    if (this.options.dropLast) return Math.floor(n);
    return Math.ceil(n) - (this.pool.length > 1 && this.pool.length % this.options.batchSize === 1 ? 1 : 0);
  }

  /** The order of epoch e: a shuffle seeded by (seed, e), so a resumed run sees the same batches. */
  order(epoch: number): number[] {
    const order = [...this.pool];
    if (this.options.shuffle ?? true) shuffleInPlace(order, seededRandom(((this.options.seed ?? 0) * 1000003 + epoch) >>> 0));
    return order;
  }

  /** The orders of the last two epochs asked for (reading ahead crosses into the next one). */
  private readonly orders = new Map<number, number[]>();

  private orderOf(epoch: number): number[] {
    let order = this.orders.get(epoch);
    if (!order) {
      order = this.order(epoch);
      this.orders.set(epoch, order);
      if (this.orders.size > 2) this.orders.delete(this.orders.keys().next().value as number);
    }
    return order;
  }

  /** The images of batch k of epoch e (this worker's share with `shard`), and every worker's count. */
  positions(epoch: number, k: number): { indices: number[]; counts?: number[] } {
    const b = this.options.batchSize;
    // The last kept batch runs to the end of the order (it may hold one image more).
    const end = !this.options.dropLast && k === this.batchesPerEpoch() - 1 ? this.pool.length : (k + 1) * b;
    const indices = this.orderOf(epoch).slice(k * b, end);
    return this.options.shard ? shareOf(indices, this.options.shard) : { indices };
  }

  /** Batch k of epoch e, read on this thread, its tensors made in the caller's scope (the step's). */
  batch(epoch: number, k: number): Batch {
    const { indices, counts } = this.positions(epoch, k);
    return this.batchFrom({ epoch, k, indices, counts, host: this.data.stored ? readImages(this.data, indices) : null });
  }

  /**
   * Batch k of epoch e read ahead: resolves when its images are on the host, and asks for
   * the next `prefetch` batches (into the next epoch) so they are read while this one trains.
   */
  async load(epoch: number, k: number): Promise<LoadedBatch> {
    const { indices, counts } = this.positions(epoch, k);
    const depth = this.options.prefetch ?? 3;
    const handle = this.data.stored?.handle() ?? null;
    if (!handle || depth === 0) return { epoch, k, indices, counts, host: this.data.stored ? readImages(this.data, indices) : null };
    this.prefetcher ??= new Prefetcher(handle, depth);
    const key = `${epoch}:${k}`;
    if (!this.prefetcher.has(key)) this.prefetcher.clear(); // a jump (resume): what was read ahead is not needed
    const pending = this.prefetcher.take(key, indices);
    const perEpoch = this.batchesPerEpoch();
    for (let [e, j] = [epoch, k + 1]; this.prefetcher.room() > 0; j++) {
      if (j >= perEpoch) [e, j] = [e + 1, 0];
      if (e > epoch + 1) break;
      this.prefetcher.request(`${e}:${j}`, this.positions(e, j).indices);
    }
    return { epoch, k, indices, counts, host: await pending };
  }

  /** A loaded batch as tensors in the caller's scope. */
  batchFrom(b: LoadedBatch): Batch {
    return t.tidy(() => {
      const idx = t.tensor(Float64Array.from(b.indices), undefined, { dtype: 'int64' });
      const images = b.host ? hostTensor(b.host) : this.all!.indexSelect(0, idx);
      return { images, extents: b.host?.extents ?? null, labels: this.labels ? this.labels.indexSelect(0, idx) : null, indices: b.indices, ...(b.counts ? { counts: b.counts } : {}) };
    });
  }

  /** Batches of epoch e from batch `from` on; each batch's tensors belong to the caller's scope. */
  *epoch(epoch: number, from = 0): Generator<Batch> {
    for (let k = from; k < this.batchesPerEpoch(); k++) yield this.batch(epoch, k);
  }

  dispose(): void {
    this.all?.dispose();
    this.labels?.dispose();
    void this.prefetcher?.dispose();
    this.prefetcher = null;
  }
}
