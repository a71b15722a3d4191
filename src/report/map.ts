// A 2-D map of embeddings: UMAP (umap-js) seeded with the report's generator, so that the
// same features and seed give the same map.
import type { UMAP as UMAPClass } from 'umap-js';
import { seededRandom } from '../data/subset';

export interface MapOptions {
  seed: number;
  /** Neighbours of each point in the graph UMAP lays out (default 15). */
  neighbours?: number;
  /** Optimisation epochs (default 200: enough for a few thousand points). */
  epochs?: number;
}

/** Rows of `features` ([count, dim], row-major) placed in 2-D; coordinates to 3 decimals. */
export function umap2d(features: ArrayLike<number>, count: number, dim: number, o: MapOptions): [number, number][] {
  if (count < 3) throw new Error(`a map needs at least 3 points, got ${count}`);
  const rows: number[][] = [];
  for (let i = 0; i < count; i++) rows.push(Array.from({ length: dim }, (_, j) => features[i * dim + j]!));
  // Loaded when a map is drawn, not whenever a command imports the run layer.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { UMAP } = require('umap-js') as { UMAP: typeof UMAPClass };
  const umap = new UMAP({ nComponents: 2, nNeighbors: Math.min(o.neighbours ?? 15, count - 1), minDist: 0.1, nEpochs: o.epochs ?? 200, random: seededRandom(o.seed) });
  return umap.fit(rows).map(([x, y]) => [round3(x!), round3(y!)]);
}

const round3 = (v: number): number => Math.round(v * 1000) / 1000;
