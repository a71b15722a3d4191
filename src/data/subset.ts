// Labeled subsets: stratified by class, chosen by a seed, so a run can be repeated exactly.

/** mulberry32: a small, fast, seedable PRNG (independent of libtorch's generator). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Picks round(fraction x class size) examples of every class (at least one), shuffled by
 * the seed; returns sorted indices.
 */
export function stratifiedSubset(labels: ArrayLike<number>, fraction: number, seed: number): number[] {
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`label fraction must be in (0, 1], got ${fraction}`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    if (!byClass.has(c)) byClass.set(c, []);
    byClass.get(c)!.push(i);
  }
  const rnd = seededRandom(seed);
  const chosen: number[] = [];
  for (const c of [...byClass.keys()].sort((x, y) => x - y)) {
    const idx = byClass.get(c)!;
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
    }
    chosen.push(...idx.slice(0, Math.max(1, Math.round(fraction * idx.length))));
  }
  return chosen.sort((x, y) => x - y);
}
