// A data set: uint8 images of one training size and channel count, with optional labels,
// either in memory (idx files, CIFAR binaries: frames of exactly size x size) or stored a
// little larger, in shard files read by offset (image folders: src/data/store).
import type { HostBatch, StoredImages } from './store/stored';

export interface ImageDataset {
  /** In memory: uint8 [count, channels, size, size], row-major. Absent when the images are `stored`. */
  pixels?: Uint8Array;
  /** Images kept at their stored size (image folders), read a batch at a time. */
  stored?: StoredImages;
  count: number;
  channels: 1 | 3;
  size: number;
  /** class index per image, or null for unlabeled images */
  labels: Int32Array | null;
  /** class names, index order */
  classes: string[];
  /** a stable id per image (relative path, or split:index), for label-subset files */
  ids: string[];
  /** where the images came from, for configs and messages */
  source: string;
  /** images passed over: non-image files, and unreadable ones with --skip-bad-images */
  skipped: { nonImages: number; bad: string[] };
}

/** Resamples uint8 CHW images to size x size (shorter side, centre crop) and to 1 or 3 channels. */
export function conform(pixels: Uint8Array, count: number, channels: number, height: number, width: number, size: number, targetChannels: 1 | 3): Uint8Array {
  if (channels === targetChannels && height === size && width === size) return pixels;
  // Imported lazily so that reading data does not start libtorch until it has to.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const t = require('../torch') as typeof import('../torch');
  return t.tidy(() => {
    let x = t.fromBytes(pixels, [count, channels, height, width], 'uint8').to('float32');
    if (channels === 3 && targetChannels === 1) x = x.mul(t.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)).sum(1, true);
    if (channels === 1 && targetChannels === 3) x = x.expand(count, 3, height, width);
    if (height !== size || width !== size) {
      const scale = size / Math.min(height, width);
      const h = Math.max(size, Math.round(height * scale));
      const w = Math.max(size, Math.round(width * scale));
      x = t.F.interpolate(x, [h, w], { mode: scale < 1 ? 'area' : 'bilinear' });
      x = x.narrow(2, Math.floor((h - size) / 2), size).narrow(3, Math.floor((w - size) / 2), size);
    }
    return x.round().clamp(0, 255).to('uint8').contiguous().data() as Uint8Array;
  });
}

/** The positions start..end-1. */
export const range = (start: number, end: number): number[] => Array.from({ length: end - start }, (_, i) => start + i);

/** Images of a data set read into one host buffer (a copy): frames for in-memory sets, stored images (with extents) else. */
export function readImages(ds: ImageDataset, indices: readonly number[]): HostBatch {
  if (ds.stored) return ds.stored.read(indices);
  const pixels = inMemory(ds);
  const frame = ds.channels * ds.size * ds.size;
  const out = new Uint8Array(indices.length * frame);
  indices.forEach((i, k) => {
    if (!(i >= 0 && i < ds.count)) throw new RangeError(`image ${i} is outside ${ds.source} (0..${ds.count - 1})`);
    out.set(pixels.subarray(i * frame, (i + 1) * frame), k * frame);
  });
  return { pixels: out, count: indices.length, channels: ds.channels, height: ds.size, width: ds.size, extents: null };
}

/** A host batch as a uint8 tensor [n, C, H, W] (in the caller's scope). */
export function hostTensor(b: HostBatch): import('../torch').Tensor {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const t = require('../torch') as typeof import('../torch');
  return t.fromBytes(b.pixels, [b.count, b.channels, b.height, b.width], 'uint8');
}

/** Images of a data set as a uint8 tensor [n, C, H, W] and their extents (null when each fills it). */
export function imageBatch(ds: ImageDataset, indices: readonly number[]): { images: import('../torch').Tensor; extents: Int32Array | null } {
  const b = readImages(ds, indices);
  return { images: hostTensor(b), extents: b.extents };
}

/** The in-memory frames of a data set; throws for a stored one (read those with readImages). */
export function inMemory(ds: ImageDataset): Uint8Array {
  if (!ds.pixels) throw new Error(`${ds.source}: its images are stored on disk; read them a batch at a time (readImages)`);
  return ds.pixels;
}

/**
 * Frames of exactly size x size (the centre square of each stored image, resized): what a
 * model exported for this size takes. In-memory frames are returned as they are.
 */
export function squareFrames(ds: ImageDataset, indices: readonly number[]): Uint8Array {
  const b = readImages(ds, indices);
  if (!b.extents && b.height === ds.size && b.width === ds.size) return b.pixels;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const t = require('../torch') as typeof import('../torch');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { centerCropResize } = require('../augment') as typeof import('../augment');
  return t.tidy(() => centerCropResize(hostTensor(b), ds.size, 1, b.extents).mul(255).round().clamp(0, 255).to('uint8').contiguous().data() as Uint8Array);
}

/** One line naming what reading passed over (unreadable images with skipBad), so a skipped file is never silent. */
export function skippedLine(paths: readonly string[]): string {
  return `skipped ${paths.length} unreadable image${paths.length > 1 ? 's' : ''}: ${paths.slice(0, 5).join(', ')}${paths.length > 5 ? ', ...' : ''}`;
}

/**
 * The images of a data set at `indices`, as a data set of their own (positions 0..n-1): the
 * labeled images of a user's set for kNN and linear evaluation. Reads go to the source.
 */
export function selectImages(ds: ImageDataset, indices: readonly number[]): ImageDataset {
  const map = Int32Array.from(indices);
  const labels = ds.labels ? Int32Array.from(map, (i) => ds.labels![i]!) : null;
  const ids = Array.from(map, (i) => ds.ids[i]!);
  if (ds.pixels) {
    const frame = ds.channels * ds.size * ds.size;
    const pixels = new Uint8Array(map.length * frame);
    map.forEach((i, k) => pixels.set(ds.pixels!.subarray(i * frame, (i + 1) * frame), k * frame));
    return { ...ds, pixels, stored: undefined, count: map.length, labels, ids };
  }
  const inner = ds.stored!;
  const stored: StoredImages = {
    count: map.length,
    channels: inner.channels,
    size: inner.size,
    heights: Uint16Array.from(map, (i) => inner.heights[i]!),
    widths: Uint16Array.from(map, (i) => inner.widths[i]!),
    read: (positions) => inner.read(positions.map((p) => map[p]!)),
    handle: () => null,
    close: () => undefined,
  };
  return { ...ds, stored, count: map.length, labels, ids };
}

/** A data set's labeled images only (a user's set has unlabeled ones, label -1); the set itself when all are labeled. */
export function labeledOnly(ds: ImageDataset): ImageDataset | null {
  if (!ds.labels) return null;
  const labeled: number[] = [];
  ds.labels.forEach((l, i) => void (l >= 0 && labeled.push(i)));
  if (labeled.length === ds.count) return ds;
  return labeled.length ? selectImages(ds, labeled) : null;
}
