// Weights as the exports write them: float32 values, batch norm folded in (nn/fold.ts).
import type { Tensor } from '../torch';
import { foldedAffine, type BatchNorm, type Foldable } from '../nn';

/** A float32 tensor's values (row-major), checked. */
export function values(t: Tensor, what: string): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`${what}: expected float32 values, got ${t.dtype}`);
  const d = t.contiguous();
  try {
    return d.data() as Float32Array;
  } finally {
    if (d !== t) d.dispose();
  }
}

export interface Affine {
  /** [out, ...] weights, row-major. */
  weight: Float32Array;
  /** [out] biases. */
  bias: Float32Array;
}

/** The layer's weights and bias with the eval-mode batch norm after it folded in. */
export function foldedValues(layer: Foldable, bn: BatchNorm, what: string): Affine {
  const f = foldedAffine(layer, bn);
  try {
    return { weight: values(f.weight, `${what}.weight`), bias: values(f.bias, `${what}.bias`) };
  } finally {
    f.weight.dispose();
    f.bias.dispose();
  }
}
