// Data loading: decoding and caching all 60,000 CIFAR-10 JPEGs, reading the cache back,
// and the loader's share of a pretraining step (ResNet-18 CIFAR, batch 256).
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import * as t from '../src';
import { BatchLoader, openDataset, type ImageDataset } from '../src/data';
import { DATASETS, tempDir } from '../test/helpers';

const CIFAR = process.env.CIFAR ?? join(DATASETS, 'cifar10');
const BATCH = 256;

const seconds = async <R>(fn: () => Promise<R> | R): Promise<[R, number]> => {
  const t0 = performance.now();
  const r = await fn();
  return [r, (performance.now() - t0) / 1000];
};

async function main(): Promise<void> {
  t.setNumThreads(2);
  const cache = tempDir('simclr-bench-cache-');
  console.log(`command: npm run bench:data  (cache in ${cache}, removed after)`);
  const splits = ['train', 'test'].map((s) => join(CIFAR, s));
  let decoded = 0;
  let decodeSeconds = 0;
  const sets: ImageDataset[] = [];
  for (const dir of splits) {
    const [ds, s] = await seconds(() => openDataset(dir, { cacheDir: cache }));
    decoded += ds.count;
    decodeSeconds += s;
    sets.push(ds);
  }
  console.log(`decode + cache: ${decoded} images in ${decodeSeconds.toFixed(1)} s = ${(decoded / decodeSeconds).toFixed(0)} images/s`);
  let readSeconds = 0;
  for (const dir of splits) {
    const [ds, s] = await seconds(() => openDataset(dir, { cacheDir: cache }));
    if (!ds.fromCache) throw new Error(`${dir} was not read from the cache`);
    readSeconds += s;
  }
  console.log(`cache read back (listing and checking ${decoded} files included): ${readSeconds.toFixed(2)} s`);
  rmSync(cache, { recursive: true });

  // Loader share: batches of 256 (gather + float conversion) against one pretraining step.
  const loader = new BatchLoader(sets[0]!, { batchSize: BATCH, seed: 0, dropLast: true });
  const it = loader.epoch(0);
  const fetch = () =>
    t.tidy(() => {
      const b = it.next().value!;
      return b.images.to('float32').div(255).sum().item();
    });
  const fetchTimes: number[] = [];
  for (let i = 0; i < 20; i++) fetchTimes.push((await seconds(fetch))[1]);
  const perBatch = fetchTimes.slice(2).reduce((a, b) => a + b, 0) / (fetchTimes.length - 2);
  const model = new t.SimCLRModel({ encoder: { depth: 18, cifarStem: true } });
  const opt = new t.LARS(model.namedParameters(), { lr: 1, weightDecay: 1e-4 });
  const images = t.keep(t.tidy(() => loader.epoch(1).next().value!.images));
  const step = () =>
    t.tidy(() => {
      const [v1, v2] = t.simclrViews(images, t.simclrViewOptions(32));
      const [z1, z2] = model.forward(t.cat([v1, v2])).chunk(2);
      const { loss } = t.ntXent(z1!, z2!, { temperature: 0.5 });
      opt.zeroGrad();
      loss.backward();
      opt.step();
    });
  step();
  const [, stepSeconds] = await seconds(step);
  console.log(`loader: ${(perBatch * 1000).toFixed(2)} ms per batch of ${BATCH}; pretraining step at batch ${BATCH}: ${stepSeconds.toFixed(2)} s`);
  console.log(`loader_share_of_step=${(perBatch / stepSeconds).toFixed(5)}  (target: < 0.05)`);
  loader.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
