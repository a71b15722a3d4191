// bfloat16 against float32 where a single run cannot tell them apart: the supervised
// baseline on 1% of Fashion-MNIST (600 images, the parity recipe's settings: ResNet-18
// width 0.25, 120 epochs, SGD Nesterov lr 0.1 cosine, wd 5e-4, crop 0.5-1 + flip, drop
// last; fractional crop boxes, as when first measured) moves by a point or more between runs that differ only in thread count or
// rounding. So it is trained for several seeds (subset and initialisation) in each
// precision, and the means are compared (issue 6: within 0.5 points).
//
//   node dist/bench/precision-seeds.js [SEEDS=3] [THREADS=2]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as t from '../src';
import { baselineConfig, baselineSubset, fashionMnist, mean, sd, trainBaseline } from './baseline-recipe';

const SEEDS = Number(process.env.SEEDS ?? 3);
const THREADS = Number(process.env.THREADS ?? 2);

async function main(): Promise<void> {
  t.setNumThreads(THREADS);
  const data = await fashionMnist();
  const config = baselineConfig();
  const results: Record<t.Precision, number[]> = { fp32: [], bf16: [] };
  const dir = mkdtempSync(join(tmpdir(), 'simclr-precision-'));
  try {
    for (let seed = 0; seed < SEEDS; seed++) {
      for (const precision of ['fp32', 'bf16'] as const) {
        const settings = t.useCompute({ precision });
        const started = performance.now();
        const top1 = await trainBaseline(data, baselineSubset(data, seed), seed, config, join(dir, `${precision}-${seed}`));
        results[precision].push(top1);
        console.log(`seed ${seed} ${settings.precision}: top-1 ${top1.toFixed(2)}% (${((performance.now() - started) / 1000).toFixed(0)} s)`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const p of ['fp32', 'bf16'] as const) console.log(`${p}: ${results[p].map((v) => v.toFixed(2)).join(', ')}; mean ${mean(results[p]).toFixed(2)}, sd ${sd(results[p]).toFixed(2)}`);
  console.log(`bf16_minus_fp32_mean_top1=${(mean(results.bf16) - mean(results.fp32)).toFixed(2)}  (target: within +-0.5)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
