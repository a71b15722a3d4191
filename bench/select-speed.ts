// How long choosing images to label takes on a large pool: 100,000 embeddings of 512
// dimensions (clustered, L2-normalised, as an encoder's), 130 and 1,000 images chosen by
// typical and kmeans, with the process's peak memory (which must not grow with the pool
// squared: 100,000^2 floats would be 40 GB).
//
//   npm run bench:select-speed [-- --images 100000 --dims 512]
import { parseArgs } from 'node:util';
import * as t from '../src';
import { selectToLabel } from '../src/select';
import { writeBenchResults } from './results-file';

function embeddings(n: number, d: number, modes: number): t.Tensor {
  t.manualSeed(0);
  return t.tidy(() => {
    const centres = t.randn([modes, d]);
    const which = t.tensor(Int32Array.from({ length: n }, (_, i) => (i * 7919) % modes)).to('int64');
    return t.F.normalize(centres.indexSelect(0, which).add(t.randn([n, d]).mul(0.6)), { dim: 1 });
  });
}

function main(): void {
  const { values } = parseArgs({ options: { images: { type: 'string', default: '100000' }, dims: { type: 'string', default: '512' } } });
  const n = Number(values.images);
  const d = Number(values.dims);
  const x = embeddings(n, d, 50);
  const figures: Record<string, number> = {};
  for (const strategy of ['typical', 'kmeans'] as const) {
    for (const count of [130, 1000]) {
      const started = performance.now();
      const picks = selectToLabel({ features: x, labeled: new Set(), count, strategy, seed: 0 });
      const seconds = (performance.now() - started) / 1000;
      if (picks.length !== count) throw new Error(`${strategy} chose ${picks.length} of ${count}`);
      figures[`select_seconds_${strategy}_${count}_of_${n}`] = Number(seconds.toFixed(2));
      console.log(`select_seconds_${strategy}_${count}_of_${n}=${seconds.toFixed(2)}`);
    }
  }
  figures.select_peak_rss_mib = Math.round(process.resourceUsage().maxRSS / 1024);
  console.log(`select_peak_rss_mib=${figures.select_peak_rss_mib} (the embeddings alone: ${Math.round((n * d * 4) / 2 ** 20)} MiB)`);
  console.log(`wrote ${writeBenchResults('select-speed', figures, { images: n, dims: d, threads: t.getNumThreads() })}`);
  x.dispose();
}

main();
