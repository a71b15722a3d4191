// Labeled subsets: stratified by class, chosen by a seed, written as a list of image ids
// (one per line, like the official ImageNet 1%/10% files) so that a run can be repeated.
import { readFileSync, writeFileSync } from 'node:fs';
import type { ImageDataset } from './dataset';

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

export function shuffleInPlace<T>(xs: T[], rnd: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

export type LabelSpec = { fraction: number } | { perClass: number };

/** '1%', '10%', '0.1' (a fraction) or '25/class'. */
export function parseLabelSpec(text: string): LabelSpec {
  const s = text.trim();
  let m = /^(\d+(?:\.\d+)?)%$/.exec(s);
  if (m) {
    const pct = Number(m[1]);
    if (pct > 0 && pct <= 100) return { fraction: pct / 100 };
  }
  m = /^(\d+)\/class$/.exec(s);
  if (m && Number(m[1]) > 0) return { perClass: Number(m[1]) };
  if (/^\d*\.?\d+$/.test(s) && Number(s) > 0 && Number(s) <= 1) return { fraction: Number(s) };
  throw new Error(`--labels must be a percentage (1%, 10%), a fraction in (0, 1] or N/class (25/class), got '${text}'`);
}

/**
 * Picks, from every class, round(fraction x class size) examples (at least one) or
 * perClass examples, shuffled by the seed; returns sorted indices.
 */
export function stratifiedSubset(labels: ArrayLike<number>, spec: LabelSpec | number, seed: number, exclude?: ReadonlySet<number>): number[] {
  const s: LabelSpec = typeof spec === 'number' ? { fraction: spec } : spec;
  if ('fraction' in s && !(s.fraction > 0 && s.fraction <= 1)) throw new Error(`label fraction must be in (0, 1], got ${s.fraction}`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    if (exclude?.has(i)) continue;
    const c = labels[i]!;
    if (!byClass.has(c)) byClass.set(c, []);
    byClass.get(c)!.push(i);
  }
  const rnd = seededRandom(seed);
  const chosen: number[] = [];
  for (const c of [...byClass.keys()].sort((x, y) => x - y)) {
    const idx = shuffleInPlace(byClass.get(c)!, rnd);
    const want = 'fraction' in s ? Math.max(1, Math.round(s.fraction * idx.length)) : s.perClass;
    if (want > idx.length) throw new Error(`--labels ${'perClass' in s ? `${s.perClass}/class` : ''}: class ${c} has only ${idx.length} images`);
    for (let k = 0; k < want; k++) chosen.push(idx[k]!); // no spread: a class may hold more elements than a call takes arguments
  }
  return chosen.sort((x, y) => x - y);
}

/** A validation split: '10%', '0.1', '500' (images) or '0' (none); at most `cap` images. */
export function parseValSpec(text: string): { fraction: number } | { count: number } {
  const s = text.trim();
  if (/^\d+$/.test(s)) return { count: Number(s) };
  try {
    const spec = parseLabelSpec(s);
    if ('fraction' in spec && spec.fraction < 1) return spec;
  } catch {
    // the message below names the flag
  }
  throw new Error(`--val must be a percentage under 100% (10%), a fraction under 1 (0.1), a number of images (500) or 0 for none, got '${text}'`);
}

/**
 * A stratified validation split of the training images (sorted indices), drawn with its
 * own stream so that it does not move with the label subset; at most `cap` images.
 */
export function validationSplit(labels: ArrayLike<number>, text: string, seed: number, cap = 5000): number[] {
  const spec = parseValSpec(text);
  const n = labels.length;
  const wanted = Math.min(cap, 'count' in spec ? spec.count : Math.round(spec.fraction * n));
  if (wanted <= 0) return [];
  if (wanted >= n) throw new Error(`--val ${text}: ${wanted} validation images would leave none to train on (${n} in all)`);
  // floor keeps the split within the cap whatever the rounding per class.
  const picked = stratifiedSubset(labels, { fraction: Math.max(wanted / n, 1e-9) }, (seed ^ 0x5f3759df) >>> 0);
  return picked.length > wanted ? picked.slice(0, wanted) : picked;
}

/** Writes the chosen images' ids, one per line. */
export function writeSubsetFile(file: string, ds: ImageDataset, indices: number[]): void {
  writeFileSync(file, indices.map((i) => ds.ids[i]).join('\n') + '\n');
}

/** Reads a subset file back into indices of ds; every id must be in ds. */
export function readSubsetFile(file: string, ds: ImageDataset): number[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`--labels-file ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const where = new Map(ds.ids.map((id, i) => [id, i]));
  const out: number[] = [];
  text.split(/\r?\n/).forEach((line, n) => {
    const id = line.trim();
    if (!id) return;
    const i = where.get(id);
    if (i === undefined) throw new Error(`--labels-file ${file}, line ${n + 1}: '${id}' is not an image of ${ds.source}`);
    out.push(i);
  });
  if (out.length === 0) throw new Error(`--labels-file ${file}: no image ids in it`);
  return [...new Set(out)].sort((a, b) => a - b);
}
