// Typicality (Hacohen et al. 2022, TypiClust): the inverse of a point's mean distance to its
// k nearest neighbours within its cluster: high in dense regions. Computed a block of rows at
// a time, so memory grows with the block times the cluster, not the cluster squared.
import * as t from '../torch';
import type { Tensor } from '../torch';

/** TypiClust's neighbourhood. */
export const TYPICALITY_NEIGHBOURS = 20;
const BLOCK = 1024;

/** Typicality of each listed row among the listed rows (its own distance, zero, left out). */
export function typicality(x: Tensor, rows: readonly number[], k = TYPICALITY_NEIGHBOURS): Float64Array {
  const m = rows.length;
  const out = new Float64Array(m);
  if (m === 1) return out.fill(1);
  const kk = Math.min(k, m - 1);
  const members = t.tidy(() => x.indexSelect(0, t.tensor(Int32Array.from(rows)).to('int64')));
  try {
    const norms = t.tidy(() => members.mul(members).sum(1));
    for (let start = 0; start < m; start += BLOCK) {
      const mean = t.tidy(() => {
        const block = members.narrow(0, start, Math.min(BLOCK, m - start));
        const d2 = block.mul(block).sum(1, true).add(norms.unsqueeze(0)).sub(block.matmul(members.transpose(0, 1)).mul(2)).clampMin(0);
        // The k+1 smallest include the row itself (distance 0): drop the smallest.
        const nearest = d2.topk(kk + 1, 1, false).values.narrow(1, 1, kk);
        return nearest.sqrt().mean(1).data() as Float32Array;
      });
      for (let i = 0; i < mean.length; i++) out[start + i] = 1 / (mean[i]! + 1e-8);
    }
    norms.dispose();
  } finally {
    members.dispose();
  }
  return out;
}
