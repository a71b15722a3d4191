// The training set's per-channel mean and std, for the normalisation every input gets
// (src/augment/normalise.ts).
import { range, readImages, type ImageDataset } from '../data';
import type { Normalisation } from '../augment';

/** Stored data sets larger than this are measured on this many images, evenly spaced. */
export const STATS_SAMPLE = 10_000;

/**
 * Per-channel mean and std of a data set's pixels, in [0, 1] units: every image of an
 * in-memory set; every stored pixel of a cached folder (totals kept with its shards); else
 * (a folder decoded into memory) its stored pixels, of up to STATS_SAMPLE images evenly spaced.
 */
export function datasetStats(ds: ImageDataset): Normalisation {
  const sum = new Float64Array(ds.channels);
  const sq = new Float64Array(ds.channels);
  let n = 0;
  const add = (pixels: Uint8Array, count: number, plane: number, extents: Int32Array | null, width: number): void => {
    for (let i = 0; i < count; i++) {
      const h = extents ? extents[2 * i]! : plane / width;
      const w = extents ? extents[2 * i + 1]! : width;
      for (let c = 0; c < ds.channels; c++) {
        const base = (i * ds.channels + c) * plane;
        let s = 0;
        let q = 0;
        for (let y = 0; y < h; y++) {
          for (let p = base + y * width, end = p + w; p < end; p++) {
            const v = pixels[p]!;
            s += v;
            q += v * v;
          }
        }
        sum[c]! += s;
        sq[c]! += q;
      }
      n += h * w;
    }
  };
  const totals = ds.stored?.totals;
  if (ds.pixels) add(ds.pixels, ds.count, ds.size * ds.size, null, ds.size);
  else if (totals) {
    // Summed as the shards were decoded: every stored pixel, nothing to read.
    totals.sums.forEach((v, c) => (sum[c] = v));
    totals.squares.forEach((v, c) => (sq[c] = v));
    n = totals.pixels;
  } else {
    const take = Math.min(ds.count, STATS_SAMPLE);
    const chosen = take === ds.count ? range(0, ds.count) : Array.from({ length: take }, (_, i) => Math.floor((i * ds.count) / take));
    for (let start = 0; start < chosen.length; start += 500) {
      const b = readImages(ds, chosen.slice(start, start + 500));
      add(b.pixels, b.count, b.height * b.width, b.extents, b.width);
    }
  }
  const mean = Array.from(sum, (s) => s / n / 255);
  const std = Array.from(sq, (q, c) => Math.sqrt(Math.max(q / n / 65025 - mean[c]! ** 2, 1e-12)));
  return { mean, std };
}

export { normalise, type Normalisation } from '../augment';
