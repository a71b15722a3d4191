// Stored images kept in memory (an image folder read with no cache directory).
import { collate, type HostBatch, type StoredImages } from './stored';

export class MemoryStore implements StoredImages {
  readonly count: number;
  readonly heights: Uint16Array;
  readonly widths: Uint16Array;

  constructor(
    readonly channels: 1 | 3,
    readonly size: number,
    private readonly images: readonly Uint8Array[],
    heights: ArrayLike<number>,
    widths: ArrayLike<number>,
  ) {
    this.count = images.length;
    this.heights = Uint16Array.from(heights);
    this.widths = Uint16Array.from(widths);
  }

  read(indices: readonly number[]): HostBatch {
    return collate(this, indices, (i, into) => into.set(this.images[i]!));
  }

  handle(): null {
    return null;
  }

  close(): void {}
}
