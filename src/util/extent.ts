// Smallest and largest of a list without spreading it into a call: `Math.max(...xs)` throws
// a RangeError once a list has more elements than the engine allows arguments (~120k).

/** [min, max] of the finite values; [NaN, NaN] when there are none. */
export function extent(values: ArrayLike<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : [NaN, NaN];
}

/** The index of the largest value (the first one on ties); -1 for an empty list. */
export function argmax(values: ArrayLike<number>, start = 0, end = values.length): number {
  let best = -1;
  for (let i = start; i < end; i++) if (best < 0 || values[i]! > values[best]!) best = i;
  return best < 0 ? -1 : best - start;
}
