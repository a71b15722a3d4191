// The last input transform of every model input: (x - mean) / std per channel, with the
// training set's statistics in [0, 1] units; and the one evaluation input built on it.
import * as t from '../torch';
import type { Tensor } from '../torch';
import { centerCropResize, toUnit, type Extents } from './views';

export interface Normalisation {
  mean: number[];
  std: number[];
}

/** (x - mean) / std for a float batch in [0, 1] (uint8 batches are scaled first). */
export function normalise(x: Tensor, norm: Normalisation): Tensor {
  return t.tidy(() => {
    const unit = toUnit(x);
    const c = unit.shape[1]!;
    const mean = t.tensor(norm.mean.slice(0, c), undefined, { device: unit.device }).reshape(1, c, 1, 1);
    const std = t.tensor(norm.std.slice(0, c), undefined, { device: unit.device }).reshape(1, c, 1, 1);
    return unit.sub(mean).div(std);
  });
}

/** What evaluation, kNN, linear evaluation and predict feed a model: on the compute device, centre crop, resize, normalise. */
export function evalInput(images: Tensor, size: number, norm: Normalisation, extents: Extents = null): Tensor {
  return t.tidy(() => normalise(centerCropResize(t.onComputeDevice(images), size, undefined, extents), norm));
}
