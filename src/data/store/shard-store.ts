// A data set's stored images in shard files, read by offset for each batch.
import { collate, type HostBatch, type PixelTotals, type StoreHandle, type StoredImages } from './stored';
import { IN_USE_RENEW_MS, ShardFiles, renewInUse } from './shard-file';

export class ShardStore implements StoredImages {
  readonly count: number;
  readonly channels: 1 | 3;
  readonly size: number;
  readonly heights: Uint16Array;
  readonly widths: Uint16Array;
  private readonly files: ShardFiles;
  private readonly renew: NodeJS.Timeout;

  constructor(
    private readonly h: StoreHandle,
    readonly totals?: PixelTotals,
  ) {
    this.count = h.shard.length;
    this.channels = h.channels;
    this.size = h.size;
    this.heights = h.heights;
    this.widths = h.widths;
    this.files = new ShardFiles(h.files);
    // In use: other jobs' sweeps keep these shards while this store is open.
    this.renew = setInterval(() => renewInUse(h.files), IN_USE_RENEW_MS);
    this.renew.unref();
  }

  read(indices: readonly number[]): HostBatch {
    for (const i of indices) if (!(i >= 0 && i < this.count)) throw new RangeError(`image ${i} is outside the data set (0..${this.count - 1})`);
    return collate(this, indices, (i, into) => this.files.read(this.h.shard[i]!, this.h.offset[i]!, into));
  }

  handle(): StoreHandle {
    return this.h;
  }

  /** Bytes of stored images. */
  bytes(): number {
    let total = 0;
    for (let i = 0; i < this.count; i++) total += this.heights[i]! * this.widths[i]! * this.channels;
    return total;
  }

  close(): void {
    clearInterval(this.renew);
    this.files.close();
  }
}
