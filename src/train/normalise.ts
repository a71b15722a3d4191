// Inputs scaled to [0, 1] then normalised by the training set's per-channel mean and std.
import * as t from '../torch';
import type { Tensor } from '../torch';
import type { ImageDataset } from '../data';

export interface Normalisation {
  mean: number[];
  std: number[];
}

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

/** (x - mean) / std for a float batch in [0, 1] (uint8 batches are scaled first). */
export function normalise(x: Tensor, norm: Normalisation): Tensor {
  return t.tidy(() => {
    const unit = x.dtype === 'uint8' ? x.to('float32').div(255) : x;
    const c = unit.shape[1]!;
    const mean = t.tensor(norm.mean.slice(0, c), undefined, { device: unit.device }).reshape(1, c, 1, 1);
    const std = t.tensor(norm.std.slice(0, c), undefined, { device: unit.device }).reshape(1, c, 1, 1);
    return unit.sub(mean).div(std);
  });
}
