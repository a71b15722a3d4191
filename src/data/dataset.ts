// A data set in memory: uint8 images of one size and channel count, with optional labels.

export interface ImageDataset {
  /** uint8 [count, channels, size, size], row-major */
  pixels: Uint8Array;
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

/** Images start..end of a data set as a uint8 tensor [end - start, C, S, S] (a copy). */
export function imagesTensor(ds: ImageDataset, start = 0, end = ds.count): import('../torch').Tensor {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const t = require('../torch') as typeof import('../torch');
  const frame = ds.channels * ds.size * ds.size;
  return t.fromBytes(ds.pixels.subarray(start * frame, end * frame), [end - start, ds.channels, ds.size, ds.size], 'uint8');
}

/** One line naming what reading passed over (unreadable images with skipBad), so a skipped file is never silent. */
export function skippedLine(paths: readonly string[]): string {
  return `skipped ${paths.length} unreadable image${paths.length > 1 ? 's' : ''}: ${paths.slice(0, 5).join(', ')}${paths.length > 5 ? ', ...' : ''}`;
}
