// Batch norm folded into the layer before it: at inference BN(conv(x)) = conv'(x) with
// w' = w * s and b' = beta + (b - mean) * s per output channel, s = gamma / sqrt(var + eps).
import type { Tensor } from '../torch';
import type { BatchNorm1d, BatchNorm2d } from '../nn';

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

/** Folds an inference-mode batch norm into the weights (and bias, if any) of the layer before it. */
export function foldBatchNorm(weight: Float32Array, bias: Float32Array | null, bn: BatchNorm1d | BatchNorm2d, what: string): Affine {
  const out = bn.numFeatures;
  if (weight.length % out !== 0) throw new Error(`${what}: ${weight.length} weights do not split into ${out} output channels`);
  const per = weight.length / out;
  const mean = values(bn.runningMean, `${what} running_mean`);
  const variance = values(bn.runningVar, `${what} running_var`);
  const gamma = bn.weight ? values(bn.weight, `${what} weight`) : null;
  const beta = bn.bias ? values(bn.bias, `${what} bias`) : null;
  const w = new Float32Array(weight.length);
  const b = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    const s = (gamma ? gamma[o]! : 1) / Math.sqrt(variance[o]! + bn.eps);
    for (let j = 0; j < per; j++) w[o * per + j] = weight[o * per + j]! * s;
    b[o] = (beta ? beta[o]! : 0) + ((bias ? bias[o]! : 0) - mean[o]!) * s;
  }
  return { weight: w, bias: b };
}
