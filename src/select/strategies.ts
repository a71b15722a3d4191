// Which images to label, behind one interface: random, kmeans (the image nearest each
// cluster's centre), typical (TypiClust: the most typical image of each large cluster that
// no labeled image covers) and uncertain (the classifier's least confident images).
import type { Tensor } from '../torch';
import { seededRandom, shuffleInPlace } from '../data/subset';
import { distancesTo, kmeans } from './kmeans';
import { typicality } from './typicality';

export const STRATEGIES = ['typical', 'kmeans', 'random', 'uncertain'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface Choice {
  /** row of the embeddings */
  index: number;
  /** its cluster (typical, kmeans) and that cluster's size */
  cluster?: number;
  clusterSize?: number;
  typicality?: number;
  /** the classifier's top probability (uncertain) */
  confidence?: number;
  /** why it was chosen, in words */
  why: string;
}

export interface SelectOptions {
  /** L2-normalised embeddings of every candidate and labeled image, [n, d] */
  features: Tensor;
  /** rows already labeled: they cover their clusters and are never chosen */
  labeled: ReadonlySet<number>;
  count: number;
  strategy: Strategy;
  seed: number;
  /** uncertain: the classifier's top probability per row */
  confidence?: Float32Array;
}

/** TypiClust leaves out clusters this small: they are more likely outliers than modes. */
const MIN_CLUSTER = 5;
/** At most this many clusters (as TypiClust caps them); more labels than clusters reuse the uncovered ones. */
const MAX_CLUSTERS = 1000;

export function selectToLabel(o: SelectOptions): Choice[] {
  const n = o.features.shape[0]!;
  const candidates = n - o.labeled.size;
  if (!(o.count >= 1)) throw new RangeError(`--count must be at least 1, got ${o.count}`);
  if (o.count > candidates) throw new RangeError(`--count ${o.count} is more than the ${candidates} images not yet labeled`);
  if (o.strategy === 'random') {
    const pool = Array.from({ length: n }, (_, i) => i).filter((i) => !o.labeled.has(i));
    return shuffleInPlace(pool, seededRandom(o.seed)).slice(0, o.count).map((index) => ({ index, why: 'random draw' }));
  }
  if (o.strategy === 'uncertain') {
    if (!o.confidence) throw new RangeError('uncertain selection needs a classifier (a fine-tuned or distilled stage)');
    const conf = o.confidence;
    const pool = Array.from({ length: n }, (_, i) => i).filter((i) => !o.labeled.has(i));
    pool.sort((a, b) => conf[a]! - conf[b]! || a - b);
    return pool.slice(0, o.count).map((index) => ({ index, confidence: conf[index]!, why: `least confident: ${(100 * conf[index]!).toFixed(1)}%` }));
  }
  return clusterChoices(o, n);
}

/** typical and kmeans: |L| + N clusters; the largest uncovered ones, one image each. */
function clusterChoices(o: SelectOptions, n: number): Choice[] {
  const k = Math.min(n, o.labeled.size + o.count, MAX_CLUSTERS);
  const { assign, centroids, sizes } = kmeans(o.features, k, o.seed);
  try {
    const covered = new Set([...o.labeled].map((i) => assign[i]!));
    const members: number[][] = Array.from({ length: k }, () => []);
    for (let i = 0; i < n; i++) if (!o.labeled.has(i)) members[assign[i]!]!.push(i);
    const bySize = (a: number, b: number) => sizes[b]! - sizes[a]! || a - b;
    const open = members.map((_, c) => c).filter((c) => !covered.has(c) && members[c]!.length > 0);
    let order = open.filter((c) => sizes[c]! >= MIN_CLUSTER).sort(bySize);
    if (order.length < o.count) order = open.sort(bySize);
    // Fewer open clusters than images wanted (many labels, clusters capped): covered ones follow.
    if (order.length < o.count) order = [...order, ...members.map((_, c) => c).filter((c) => covered.has(c) && members[c]!.length > 0).sort(bySize)];
    const chosen: Choice[] = [];
    const taken = new Set<number>();
    // More labels than uncovered clusters: the largest are visited again for their next image.
    for (let round = 0; chosen.length < o.count; round++) {
      let added = 0;
      for (const c of order) {
        if (chosen.length >= o.count) break;
        const choice = pickInCluster(o, members[c]!.filter((i) => !taken.has(i)), c, sizes[c]!, centroids, round);
        if (!choice) continue;
        taken.add(choice.index);
        chosen.push(choice);
        added++;
      }
      if (added === 0) break;
    }
    return chosen;
  } finally {
    centroids.dispose();
  }
}

function pickInCluster(o: SelectOptions, rows: number[], c: number, size: number, centroids: Tensor, round: number): Choice | null {
  if (rows.length === 0) return null;
  const again = round > 0 ? `, pick ${round + 1} in it` : '';
  if (o.strategy === 'kmeans') {
    const d = distancesTo(o.features, rows, centroids.narrow(0, c, 1).reshape(-1));
    let best = 0;
    for (let i = 1; i < rows.length; i++) if (d[i]! < d[best]!) best = i;
    return { index: rows[best]!, cluster: c, clusterSize: size, why: `nearest the centre of cluster ${c} (${size} images)${again}` };
  }
  const typ = typicality(o.features, rows);
  let best = 0;
  for (let i = 1; i < rows.length; i++) if (typ[i]! > typ[best]!) best = i;
  return { index: rows[best]!, cluster: c, clusterSize: size, typicality: typ[best]!, why: `most typical of cluster ${c} (${size} images, no label yet)${again}` };
}
