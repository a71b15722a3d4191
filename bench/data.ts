// Data loading, the figures issue 16 asks for:
//  1. decoding + caching all 60,000 CIFAR-10 JPEGs (32px, parallel worker threads) and
//     opening that cache again;
//  2. "photos": CIFAR-10 images enlarged to assorted camera shapes (4:3, 3:2, 16:9,
//     portrait, 300-600 px), decoded at 64 and 224 (stored at up to 1.15x, 4:3);
//  3. cached read images/s (positioned reads + collation, random batches) at 32, 64, 224;
//  4. loader_share_of_step: the time the training thread spends getting each batch (waiting
//     for the read-ahead worker, then making the tensor) over the time of a SimCLR
//     pretraining step (ResNet-18, the machine's precision), at 64x64 and 224x224;
//  5. the process's peak resident memory.
import { join } from 'node:path';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import * as t from '../src';
import { BatchLoader, loadSharp, openDataset, type ImageDataset } from '../src/data';
import { pretrainStep, datasetStats, type PretrainState } from '../src/train';
import { prepareModel } from '../src/nn';
import { DATASETS, tempDir } from '../test/helpers';
import { writeBenchResults } from './results-file';

const CIFAR = process.env.CIFAR ?? join(DATASETS, 'cifar10');
const PHOTOS = Number(process.env.PHOTOS ?? 1500);
const STEPS = Number(process.env.STEPS ?? 5);

const seconds = async <R>(fn: () => Promise<R> | R): Promise<[R, number]> => {
  const t0 = performance.now();
  const r = await fn();
  return [r, (performance.now() - t0) / 1000];
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;

/** CIFAR-10 images enlarged to camera-like shapes, as JPEGs (quality 90). */
async function makePhotos(dir: string, count: number): Promise<void> {
  const sharp = await loadSharp();
  const shapes: [number, number][] = [[640, 480], [600, 400], [640, 360], [375, 500], [400, 400], [512, 384], [450, 300], [300, 450]];
  const classes = readdirSync(join(CIFAR, 'train')).sort();
  let made = 0;
  for (const c of classes) mkdirSync(join(dir, c), { recursive: true });
  const jobs: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const c = classes[i % classes.length]!;
    const file = readdirSync(join(CIFAR, 'train', c))[Math.floor(i / classes.length)]!;
    const [w, h] = shapes[i % shapes.length]!;
    jobs.push(sharp(join(CIFAR, 'train', c, file)).resize(w, h, { fit: 'fill', kernel: 'cubic' }).jpeg({ quality: 90 }).toFile(join(dir, c, `${String(i).padStart(5, '0')}.jpg`)).then(() => made++));
    if (jobs.length >= 16) await Promise.all(jobs.splice(0));
  }
  await Promise.all(jobs);
}

/** Reads every image once in random batches of `batch` (positioned reads + collation). */
function readRate(ds: ImageDataset, batch: number): number {
  const loader = new BatchLoader(ds, { batchSize: batch, seed: 1, prefetch: 0 });
  const t0 = performance.now();
  let n = 0;
  for (let k = 0; k < loader.batchesPerEpoch(); k++) {
    const { indices } = loader.positions(0, k);
    n += ds.stored!.read(indices).count;
  }
  loader.dispose();
  return n / ((performance.now() - t0) / 1000);
}

/** The training thread's time per batch (await + tensor) against the pretraining step's, over STEPS steps. */
async function loaderShare(ds: ImageDataset, batch: number): Promise<{ load: number; step: number; share: number }> {
  t.manualSeed(0);
  const size = ds.size;
  const model = prepareModel(new t.SimCLRModel({ encoder: { depth: 18, cifarStem: size <= 32 } }));
  const optimizer = new t.LARS(model.namedParameters(), { lr: 0.3, weightDecay: 1e-6 });
  const state: PretrainState = { model, optimizer, views: t.simclrViewOptions(size), norm: datasetStats(ds), temperature: 0.1, workers: null };
  const loader = new BatchLoader(ds, { batchSize: batch, seed: 0, dropLast: true });
  const loads: number[] = [];
  const steps: number[] = [];
  try {
    for (let k = 0; k <= STEPS; k++) {
      const t0 = performance.now();
      const loaded = await loader.load(0, k);
      const t1 = performance.now();
      t.tidy(() => {
        const b = loader.batchFrom(loaded);
        const t2 = performance.now();
        pretrainStep(state, b.images, { stage: 'bench', step: k, lr: 0.3, epoch: 0 }, { seed: 0, epoch: 0, indices: b.indices }, undefined, b.extents);
        const t3 = performance.now();
        // The first step warms up (and its batch cannot have been read ahead).
        if (k > 0) {
          loads.push(t1 - t0 + (t2 - t1));
          steps.push(t3 - t2);
        }
      });
    }
  } finally {
    loader.dispose();
    optimizer.dispose();
    model.dispose();
  }
  const load = median(loads) / 1000;
  const step = median(steps) / 1000;
  return { load, step, share: load / step };
}

type Figures = Record<string, number>;

/** Prints `name=value` in a line of its own and keeps the figure. */
function figure(figures: Figures, name: string, value: number, digits = 0): string {
  figures[name] = Number(value.toFixed(digits));
  return `${name}=${figures[name]}`;
}

/** 1. CIFAR-10's 60,000 JPEGs at their own 32px: decoded and cached, the cache opened again, read. */
async function cifarFigures(cache: string, figures: Figures): Promise<ImageDataset[]> {
  const splits = ['train', 'test'].map((s) => join(CIFAR, s));
  let decoded = 0;
  let decodeSeconds = 0;
  const cifar: ImageDataset[] = [];
  for (const dir of splits) {
    const [ds, s] = await seconds(() => openDataset(dir, { cacheDir: cache, quiet: true }));
    decoded += ds.count;
    decodeSeconds += s;
    cifar.push(ds);
  }
  console.log(`decode + cache, CIFAR-10 32px: ${decoded} images in ${decodeSeconds.toFixed(1)} s = ${figure(figures, 'decode_images_per_s_32px', decoded / decodeSeconds)}`);
  let reopen = 0;
  for (const dir of splits) {
    const [ds, s] = await seconds(() => openDataset(dir, { cacheDir: cache, quiet: true }));
    if (!ds.fromCache) throw new Error(`${dir} was not read from the cache`);
    reopen += s;
    ds.stored?.close();
  }
  console.log(`cache opened again (listing and checking ${decoded} files included): ${figure(figures, 'cache_reopen_seconds', reopen, 2)}`);
  console.log(`cached read, 32px: ${figure(figures, 'cached_read_images_per_s_32px', readRate(cifar[0]!, 256))} (random batches of 256)`);
  return cifar;
}

/** 2-4. Photos decoded at 64 and 224, read from the cache, and the loader's share of a pretraining step. */
async function photoFigures(cache: string, photos: string, figures: Figures, precision: string): Promise<Record<string, unknown>> {
  const [, makeSeconds] = await seconds(() => makePhotos(photos, PHOTOS));
  console.log(`made ${PHOTOS} photos (300-640 px, 4:3 3:2 16:9 1:1 portrait) in ${makeSeconds.toFixed(1)} s`);
  const details: Record<string, unknown> = {};
  for (const [size, batch] of [[64, 128], [224, 32]] as const) {
    const [ds, s] = await seconds(() => openDataset(photos, { imageSize: size, cacheDir: cache, quiet: true }));
    const bytes = (ds.stored as unknown as { bytes(): number }).bytes();
    const frames = bytes / ds.count / (3 * size * size);
    console.log(`photos at ${size}: ${figure(figures, `decode_images_per_s_${size}px`, ds.count / s)} (${ds.count} in ${s.toFixed(1)} s; stored ${mb(bytes)}, ${frames.toFixed(2)}x a ${size}x${size} frame)`);
    console.log(`photos at ${size}: ${figure(figures, `cached_read_images_per_s_${size}px`, readRate(ds, batch))} (random batches of ${batch})`);
    const r = await loaderShare(ds, batch);
    console.log(`photos at ${size}, batch ${batch}: loader ${(r.load * 1000).toFixed(2)} ms per batch against a ${r.step.toFixed(2)} s step (ResNet-18, ${precision}): ${figure(figures, `loader_share_of_step_${size}px`, r.share, 5)}  (target: < 0.05)`);
    details[`${size}px`] = { batch, images: ds.count, storedBytes: bytes, storedFrames: Number(frames.toFixed(2)), loaderMsPerBatch: Number((r.load * 1000).toFixed(3)), stepSeconds: Number(r.step.toFixed(3)) };
    ds.stored?.close();
  }
  return details;
}

async function main(): Promise<void> {
  t.setNumThreads(availableParallelism());
  const compute = t.useCompute({ precision: 'auto', channelsLast: 'auto' });
  const cache = tempDir('simclr-bench-cache-');
  const photos = tempDir('simclr-bench-photos-');
  const load = loadavg().map((l) => Number(l.toFixed(2)));
  console.log(`command: npm run bench:data  (cache in ${cache}, removed after; ${availableParallelism()} cores, load average ${load.join(' ')})`);
  console.log(`compute: ${compute.precision}, ${compute.channelsLast ? 'channels-last' : 'NCHW'}`);
  const figures: Figures = {};
  let photoDetails: Record<string, unknown>;
  try {
    const cifar = await cifarFigures(cache, figures);
    photoDetails = await photoFigures(cache, photos, figures, compute.precision);
    for (const ds of cifar) ds.stored?.close();
  } finally {
    rmSync(cache, { recursive: true, force: true });
    rmSync(photos, { recursive: true, force: true });
  }
  console.log(figure(figures, 'peak_rss_mib', (process.resourceUsage().maxRSS * 1024) / 2 ** 20));
  const file = writeBenchResults('data', figures, {
    threads: availableParallelism(), loadAverageAtStart: load, precision: compute.precision, channelsLast: compute.channelsLast,
    photos: PHOTOS, pretrainSteps: STEPS, photosAt: photoDetails,
  });
  console.log(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
