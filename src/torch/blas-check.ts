// A float64 matrix product through the BLAS, checked against exact integer arithmetic:
// a wrong kernel family gives wrong numbers, not an error, so it is tested, not assumed.
import type { Handle, NativeAddon } from './native';

export interface BlasCheck {
  correct: boolean;
  /** Largest absolute error of the BLAS product against the exact one. */
  maxError: number;
}

/** Multiplies small-integer matrices (exact in float64) with the BLAS and without it. */
export function checkBlasProduct(n: NativeAddon, m = 67, k = 129, p = 71): BlasCheck {
  const a = Float64Array.from({ length: m * k }, (_, i) => ((i * 7919) % 23) - 11);
  const b = Float64Array.from({ length: k * p }, (_, i) => ((i * 104729) % 19) - 9);
  const exact = new Float64Array(m * p);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < p; j++) {
      let s = 0;
      for (let x = 0; x < k; x++) s += a[i * k + x]! * b[x * p + j]!;
      exact[i * p + j] = s;
    }
  const handles: Handle[] = [];
  const h = (v: Handle): Handle => (handles.push(v), v);
  try {
    const product = h(n.matmul(h(n.fromBytes(a, [m, k], 'float64')), h(n.fromBytes(b, [k, p], 'float64'))));
    const err = h(n.amax(h(n.abs(h(n.sub(product, h(n.fromBytes(exact, [m, p], 'float64')))))), [], false));
    const maxError = n.item(err);
    return { correct: maxError === 0, maxError };
  } finally {
    for (const x of handles) n.dispose(x);
  }
}

/** GFLOP/s of a float32 n x n product (the probe's speed figure). */
export function blasSpeed(n: NativeAddon, size = 1024, repeats = 3): number {
  const a = n.fromBytes(new Float32Array(size * size).fill(0.5), [size, size], 'float32');
  try {
    n.dispose(n.matmul(a, a));
    const t0 = performance.now();
    for (let r = 0; r < repeats; r++) n.dispose(n.matmul(a, a));
    return (2 * size ** 3 * repeats) / ((performance.now() - t0) / 1000) / 1e9;
  } finally {
    n.dispose(a);
  }
}
