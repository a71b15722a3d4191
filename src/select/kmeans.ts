// k-means on embeddings (rows of a [n, d] tensor), seeded: k-means++ seeding, then Lloyd
// steps. Memory grows with n x k in chunks of rows, never with n x n.
import * as t from '../torch';
import type { Tensor } from '../torch';
import { seededRandom, shuffleInPlace } from '../data/subset';

export interface Clustering {
  /** cluster of each row */
  assign: Int32Array;
  /** [k, d] */
  centroids: Tensor;
  /** rows per cluster */
  sizes: number[];
}

const CHUNK = 8192;

/** Squared distance of every row to every centroid, in chunks; calls back with each chunk [rows, k]. */
function eachDistanceChunk(x: Tensor, centroids: Tensor, f: (start: number, d2: Tensor) => void): void {
  const n = x.shape[0]!;
  const cNorm = centroids.mul(centroids).sum(1);
  for (let start = 0; start < n; start += CHUNK) {
    t.tidy(() => {
      const rows = x.narrow(0, start, Math.min(CHUNK, n - start));
      const d2 = rows.mul(rows).sum(1, true).add(cNorm.unsqueeze(0)).sub(rows.matmul(centroids.transpose(0, 1)).mul(2)).clampMin(0);
      f(start, d2);
    });
  }
  cNorm.dispose();
}

/** k-means++: each next centre drawn with probability proportional to its squared distance to the nearest chosen one. */
function seedCentres(x: Tensor, k: number, rnd: () => number): number[] {
  const n = x.shape[0]!;
  const chosen = [Math.floor(rnd() * n)];
  const nearest = new Float64Array(n).fill(Infinity);
  while (chosen.length < k) {
    const last = t.tidy(() => x.narrow(0, chosen.at(-1)!, 1));
    eachDistanceChunk(x, last, (start, d2) => {
      const d = d2.reshape(-1).data() as Float32Array;
      for (let i = 0; i < d.length; i++) if (d[i]! < nearest[start + i]!) nearest[start + i] = d[i]!;
    });
    last.dispose();
    let total = 0;
    for (let i = 0; i < n; i++) total += nearest[i]!;
    if (!(total > 0)) break; // every row sits on a centre already
    let r = rnd() * total;
    let pick = n - 1;
    for (let i = 0; i < n; i++) {
      r -= nearest[i]!;
      if (r <= 0) {
        pick = i;
        break;
      }
    }
    chosen.push(pick);
  }
  return chosen;
}

/** Lloyd's k-means with k-means++ seeding; deterministic for a seed (and thread count). */
export function kmeans(x: Tensor, k: number, seed: number, { iterations = 40 } = {}): Clustering {
  const n = x.shape[0]!;
  const d = x.shape[1]!;
  if (!(k >= 1 && k <= n)) throw new RangeError(`k-means: k must be 1..${n} (the rows), got ${k}`);
  const rnd = seededRandom((seed ^ 0x2545f491) >>> 0);
  // k-means++ on a seeded sample of the rows (20 a centre, at least 10,000): the seeding's cost
  // is rows x centres, and a sample of that size places the centres as well for Lloyd to refine.
  const sampleSize = Math.min(n, Math.max(10_000, 20 * k));
  const sample = sampleSize < n ? shuffleInPlace(Array.from({ length: n }, (_, i) => i), rnd).slice(0, sampleSize).sort((a, b) => a - b) : null;
  const seedRows = sample ? t.tidy(() => x.indexSelect(0, t.tensor(Int32Array.from(sample)).to('int64'))) : x;
  const starts = seedCentres(seedRows, k, rnd).map((i) => (sample ? sample[i]! : i));
  if (seedRows !== x) seedRows.dispose();
  let centroids = t.tidy(() => x.indexSelect(0, t.tensor(Int32Array.from(starts)).to('int64')));
  let assign = new Int32Array(n).fill(-1);
  for (let it = 0; it < iterations; it++) {
    const next = new Int32Array(n);
    const far = { row: 0, d: -1 };
    eachDistanceChunk(x, centroids, (start, d2) => {
      const { values, indices } = d2.topk(1, 1, false);
      const idx = indices.reshape(-1).to('int32').data() as Int32Array;
      const val = values.reshape(-1).data() as Float32Array;
      next.set(idx, start);
      for (let i = 0; i < val.length; i++) if (val[i]! > far.d) [far.row, far.d] = [start + i, val[i]!];
    });
    // Stop when under one row in a thousand changes cluster (Lloyd's last steps move almost nothing).
    let moved = 0;
    for (let i = 0; i < n; i++) if (next[i] !== assign[i]) moved++;
    const changed = moved > n / 1000;
    assign = next;
    const sizes = new Array<number>(k).fill(0);
    for (const c of assign) sizes[c]!++;
    const updated = t.tidy(() => {
      const index = t.tensor(assign).to('int64').unsqueeze(1).expand(n, d);
      const sums = t.zeros([k, d]).scatterAdd(0, index, x);
      let c = sums.div(t.tensor(Float32Array.from(sizes, (s) => Math.max(s, 1))).unsqueeze(1));
      // An empty cluster restarts at the row farthest from its centre.
      const empty = sizes.findIndex((s) => s === 0);
      if (empty >= 0) c = t.cat([c.narrow(0, 0, empty), x.narrow(0, far.row, 1), c.narrow(0, empty + 1, k - empty - 1)], 0);
      return c;
    });
    centroids.dispose();
    centroids = updated;
    if (!changed) break;
  }
  const sizes = new Array<number>(k).fill(0);
  for (const c of assign) sizes[c]!++;
  return { assign, centroids, sizes };
}

/** Squared distance of each listed row to a centroid. */
export function distancesTo(x: Tensor, rows: readonly number[], centroid: Tensor): Float32Array {
  return t.tidy(() => {
    const m = x.indexSelect(0, t.tensor(Int32Array.from(rows)).to('int64'));
    return m.sub(centroid.unsqueeze(0)).pow(2).sum(1).data() as Float32Array;
  });
}
