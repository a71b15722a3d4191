// The training set's per-channel mean and std, for the normalisation every input gets
// (src/augment/normalise.ts).
import type { ImageDataset } from '../data';
import type { Normalisation } from '../augment';

/** Per-channel mean and std of a data set's pixels, in [0, 1] units. */
export function datasetStats(ds: ImageDataset): Normalisation {
  const plane = ds.size * ds.size;
  const sum = new Float64Array(ds.channels);
  const sq = new Float64Array(ds.channels);
  for (let i = 0; i < ds.count; i++) {
    for (let c = 0; c < ds.channels; c++) {
      const base = (i * ds.channels + c) * plane;
      let s = 0;
      let q = 0;
      for (let p = 0; p < plane; p++) {
        const v = ds.pixels[base + p]!;
        s += v;
        q += v * v;
      }
      sum[c]! += s;
      sq[c]! += q;
    }
  }
  const n = ds.count * plane;
  const mean = Array.from(sum, (s) => s / n / 255);
  const std = Array.from(sq, (q, c) => Math.sqrt(Math.max(q / n / 65025 - mean[c]! ** 2, 1e-12)));
  return { mean, std };
}

export { normalise, type Normalisation } from '../augment';
