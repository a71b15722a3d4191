// The decoded cache of an image folder: shards read by offset, rebuilt only where a file
// changed, a stopped first decode continued, the same batches whatever was rebuilt, and
// the loader reading ahead on a worker thread. Real data: CIFAR-10 JPEGs plus photos of
// other shapes made from them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { claimShard } from '../src/data/store/shard-file';
import { join } from 'node:path';
import * as t from '../src';
import { BatchLoader, decodeStored, loadSharp, openDataset, range, readImages, shardDir, storedExtent, type ImageDataset } from '../src/data';
import { datasetStats } from '../src/train';
import { DATASETS, tempDir } from './helpers';

const CIFAR = join(DATASETS, 'cifar10', 'train');
const CLASSES = ['automobile', 'bird', 'frog'];
const SIZE = 28;
const SHARD = 24;

/** 3 classes x 100 CIFAR-10 JPEGs, and in a fourth class 24 of them enlarged to other shapes (wide, tall, big). */
async function folder(): Promise<string> {
  const dir = tempDir('simclr-shards-');
  for (const c of CLASSES) {
    mkdirSync(join(dir, c));
    for (const f of readdirSync(join(CIFAR, c)).slice(0, 100)) copyFileSync(join(CIFAR, c, f), join(dir, c, f));
  }
  const sharp = await loadSharp();
  mkdirSync(join(dir, 'shapes'));
  const shapes: [number, number][] = [[48, 36], [36, 60], [90, 40], [64, 64], [30, 45], [120, 100]];
  const sources = readdirSync(join(CIFAR, 'horse')).slice(0, 24);
  for (let i = 0; i < sources.length; i++) {
    const [w, h] = shapes[i % shapes.length]!;
    await sharp(join(CIFAR, 'horse', sources[i]!)).resize(w, h, { fit: 'fill' }).toFile(join(dir, 'shapes', `${String(i).padStart(3, '0')}.${i % 2 ? 'png' : 'jpg'}`));
  }
  return dir;
}

const open = (dir: string, cache: string, extra: Partial<Parameters<typeof openDataset>[1]> = {}) =>
  openDataset(dir, { imageSize: SIZE, channels: 3, cacheDir: cache, shardImages: SHARD, quiet: true, ...extra }) as Promise<ImageDataset & { shards: number; decodedShards: number; decodedImages: number; fromCache: boolean }>;

/** Every batch of two epochs as bytes: indices, extents and pixels. */
function batches(ds: ImageDataset): string[] {
  const loader = new BatchLoader(ds, { batchSize: 32, seed: 5 });
  const out: string[] = [];
  for (const e of [0, 1])
    for (let k = 0; k < loader.batchesPerEpoch(); k++) {
      const h = readImages(ds, loader.positions(e, k).indices);
      out.push(`${loader.positions(e, k).indices.join(',')}|${h.height}x${h.width}|${h.extents?.join(',') ?? '-'}|${Buffer.from(h.pixels).toString('base64')}`);
    }
  loader.dispose();
  return out;
}

const shardFiles = (cache: string, dir: string) => readdirSync(shardDir(cache, dir, SIZE, 3));

test('a folder over several shards: each image read back by offset is what sharp decodes, at its stored size', async () => {
  const dir = await folder();
  const cache = tempDir('simclr-cache-');
  const ds = await open(dir, cache);
  assert.equal(ds.count, 324);
  assert.ok(ds.shards >= 6, `${ds.shards} shards`);
  assert.equal(ds.decodedShards, ds.shards);
  assert.equal(shardFiles(cache, dir).length, 2 * ds.shards, 'a data file and an index per shard, nothing else');
  assert.ok(!readdirSync(dir).some((f) => !CLASSES.includes(f) && f !== 'shapes'), 'nothing written beside the data');
  const sharp = await loadSharp();
  for (const id of ['automobile/' + readdirSync(join(dir, 'automobile'))[7], 'shapes/000.jpg', 'shapes/002.jpg', 'shapes/005.png']) {
    const i = ds.ids.indexOf(id);
    const own = await decodeStored(sharp, join(dir, id), SIZE, 3);
    const read = readImages(ds, [i]);
    assert.deepEqual([read.height, read.width], [own.height, own.width], id);
    assert.deepEqual(Buffer.from(read.pixels), Buffer.from(own.pixels), id);
  }
  // The normalisation statistics come with the shards: those of every stored pixel.
  const stats = datasetStats(ds);
  const all = readImages(ds, range(0, ds.count));
  const sums = [0, 0, 0];
  let pixels = 0;
  for (let k = 0; k < all.count; k++) {
    const [h, w] = all.extents ? [all.extents[2 * k]!, all.extents[2 * k + 1]!] : [all.height, all.width];
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) sums[c]! += all.pixels[((k * 3 + c) * all.height + y) * all.width + x]!;
    pixels += h * w;
  }
  sums.forEach((s, c) => assert.ok(Math.abs(s / pixels / 255 - stats.mean[c]!) < 1e-9, `mean of channel ${c}`));
  // Stored sizes: 32px CIFAR images as they are (between 28 and 32), others at 1.15x of 28, 4:3 at most.
  assert.deepEqual(storedExtent(32, 32, SIZE), [32, 32]);
  assert.deepEqual(storedExtent(36, 48, SIZE), [32, 43]);
  assert.deepEqual(storedExtent(40, 90, SIZE), [32, 43]);
  assert.deepEqual(storedExtent(60, 36, SIZE), [43, 32]);
  const mixed = readImages(ds, [ds.ids.indexOf('shapes/000.jpg'), ds.ids.indexOf('shapes/001.png'), 0]);
  assert.deepEqual([mixed.height, mixed.width], [43, 43], 'the canvas holds the largest');
  assert.deepEqual([...mixed.extents!], [32, 43, 43, 32, 32, 32]);
  // The canvas repeats each image's last column and row.
  const plane = 43 * 43;
  const [first] = [mixed.pixels.subarray(0, 3 * plane)];
  for (let y = 0; y < 32; y++) assert.equal(first[y * 43 + 42], first[y * 43 + 42], 'full width');
  for (let x = 0; x < 43; x++) assert.equal(first[40 * 43 + x], first[31 * 43 + x], 'rows below repeat the last');
  const third = mixed.pixels.subarray(2 * 3 * plane, 2 * 3 * plane + plane);
  for (let y = 0; y < 32; y++) assert.equal(third[y * 43 + 40], third[y * 43 + 31], 'columns right of it repeat the last');
  rmSync(dir, { recursive: true });
  rmSync(cache, { recursive: true });
});

test('a changed, added or removed file rebuilds only its shard, and the batches are the same as from a fresh cache', async () => {
  const dir = await folder();
  const cache = tempDir('simclr-cache-');
  const ds = await open(dir, cache);
  const before = batches(ds);
  const pixelsBefore = Buffer.from(readImages(ds, range(0, ds.count)).pixels);
  const extentsBefore = readImages(ds, range(0, ds.count)).extents;
  ds.stored!.close();
  const again = await open(dir, cache);
  assert.equal(again.fromCache, true);
  assert.equal(again.decodedImages, 0);
  assert.deepEqual(batches(again), before, 'read back from the cache');
  // A touched file: one shard decoded again, the batches unchanged.
  const touched = join(dir, 'bird', readdirSync(join(dir, 'bird'))[50]!);
  utimesSync(touched, new Date(), new Date(Date.now() + 10_000));
  const after = await open(dir, cache);
  assert.equal(after.decodedShards, 1);
  assert.ok(after.decodedImages < 3 * SHARD, `${after.decodedImages} images decoded again`);
  assert.deepEqual(batches(after), before, 'the same batches after a partial rebuild');
  // The replaced shard stays while it was used within the hour (another job may still read it), then goes.
  assert.equal(shardFiles(cache, dir).length, 2 * (after.shards + 1), 'the replaced shard is kept while in use');
  const hoursAgo = new Date(Date.now() - 2 * 3600 * 1000);
  for (const f of shardFiles(cache, dir)) if (f.endsWith('.json')) utimesSync(join(shardDir(cache, dir, SIZE, 3), f), hoursAgo, hoursAgo);
  const later = await open(dir, cache);
  assert.equal(later.decodedShards, 0);
  assert.equal(shardFiles(cache, dir).length, 2 * after.shards, 'the replaced shard is removed once unused for an hour');
  // A changed file's pixels change and nothing else's.
  writeFileSync(touched, readFileSync(join(CIFAR, 'ship', readdirSync(join(CIFAR, 'ship'))[0]!)));
  const changed = await open(dir, cache);
  assert.equal(changed.decodedShards, 1);
  const i = changed.ids.indexOf(touched.slice(dir.length + 1));
  const shipPixels = (await decodeStored(await loadSharp(), touched, SIZE, 3)).pixels;
  assert.deepEqual(Buffer.from(readImages(changed, [i]).pixels), Buffer.from(shipPixels));
  const all = readImages(changed, range(0, changed.count));
  assert.deepEqual(all.extents, extentsBefore);
  const frame = 3 * all.height * all.width;
  for (let j = 0; j < changed.count; j++) {
    const same = Buffer.from(all.pixels.subarray(j * frame, (j + 1) * frame)).equals(pixelsBefore.subarray(j * frame, (j + 1) * frame));
    assert.equal(same, j !== i, `image ${j}`);
  }
  // An added file: at most two new shards (it may end one); a removed one: one.
  copyFileSync(join(CIFAR, 'frog', readdirSync(join(CIFAR, 'frog'))[400]!), join(dir, 'frog', 'added.jpg'));
  const added = await open(dir, cache);
  assert.equal(added.count, 325);
  assert.ok(added.decodedShards >= 1 && added.decodedShards <= 2, `${added.decodedShards} shards for one added file`);
  rmSync(join(dir, 'automobile', readdirSync(join(dir, 'automobile'))[10]!));
  const removed = await open(dir, cache);
  assert.equal(removed.count, 324);
  assert.ok(removed.decodedShards <= 1, `${removed.decodedShards} shards for one removed file`);
  // A cache deleted and built again gives the very same batches.
  writeFileSync(touched, readFileSync(join(CIFAR, 'bird', readdirSync(join(CIFAR, 'bird'))[50]!)));
  const fresh = tempDir('simclr-cache-');
  const a = await open(dir, cache);
  const b = await open(dir, fresh);
  assert.equal(b.decodedShards, b.shards);
  assert.deepEqual(batches(b), batches(a));
  rmSync(dir, { recursive: true });
  rmSync(cache, { recursive: true });
  rmSync(fresh, { recursive: true });
});

test('a first decode stopped part way keeps its finished shards, and the next read decodes only the rest', async () => {
  const dir = await folder();
  const cache = tempDir('simclr-cache-');
  const stop = new AbortController();
  await assert.rejects(
    open(dir, cache, { decodeWorkers: 2, signal: stop.signal, onProgress: (done) => done >= 120 && stop.abort() }),
    /decoding .* stopped: \d+ of \d+ shards written, kept in .*; read the folder again to continue/,
  );
  const kept = shardFiles(cache, dir);
  assert.ok(kept.every((f) => /^[0-9a-f]{24}\.(bin|json)$/.test(f)), `no half-written shard left: ${kept.join(', ')}`);
  const finished = kept.filter((f) => f.endsWith('.json')).length;
  assert.ok(finished >= 2, `${finished} shards finished before the stop`);
  const continued = await open(dir, cache);
  assert.equal(continued.decodedShards, continued.shards - finished, 'only the shards not written');
  const fresh = tempDir('simclr-cache-');
  assert.deepEqual(batches(continued), batches(await open(dir, fresh)), 'the same as an uninterrupted decode');
  rmSync(dir, { recursive: true });
  rmSync(cache, { recursive: true });
  rmSync(fresh, { recursive: true });
});

test('two processes reading the same new folder share the decoding: each shard is decoded once', async () => {
  const dir = await folder();
  const cache = tempDir('simclr-cache-');
  const script = `const d = require(${JSON.stringify(join(__dirname, '..', 'src', 'data'))});
    d.openDataset(${JSON.stringify(dir)}, { imageSize: ${SIZE}, channels: 3, cacheDir: ${JSON.stringify(cache)}, shardImages: ${SHARD}, quiet: true, decodeWorkers: 1 })
      .then((ds) => console.log(JSON.stringify({ count: ds.count, decoded: ds.decodedImages })));`;
  const run = () =>
    new Promise<{ count: number; decoded: number }>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b));
      child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`exit ${code}`))));
    });
  const [a, b] = await Promise.all([run(), run()]);
  assert.equal(a.count, 324);
  assert.equal(b.count, 324);
  assert.equal(a.decoded + b.decoded, 324, `decoded ${a.decoded} + ${b.decoded}`);
  const ds = await open(dir, cache);
  assert.equal(ds.decodedImages, 0);
  assert.ok(shardFiles(cache, dir).every((f) => /^[0-9a-f]{24}\.(bin|json)$/.test(f)), 'no claim left behind');
  rmSync(dir, { recursive: true });
  rmSync(cache, { recursive: true });
});

test('the loader reads ahead on a worker thread: the same batches as reading in place, each worker its share', async () => {
  const dir = await folder();
  const cache = tempDir('simclr-cache-');
  const ds = await open(dir, cache);
  const inPlace = new BatchLoader(ds, { batchSize: 40, seed: 2, dropLast: true });
  const ahead = new BatchLoader(ds, { batchSize: 40, seed: 2, dropLast: true, prefetch: 2 });
  const workers = [0, 1, 2].map((rank) => new BatchLoader(ds, { batchSize: 40, seed: 2, dropLast: true, shard: { rank, worldSize: 3 } }));
  try {
    for (const e of [0, 1])
      for (let k = 0; k < inPlace.batchesPerEpoch(); k++) {
        const want = t.tidy(() => {
          const b = inPlace.batch(e, k);
          return { pixels: Buffer.from(b.images.data() as Uint8Array), shape: b.images.shape, extents: b.extents, labels: b.labels!.toArray(), indices: b.indices };
        });
        const loaded = await ahead.load(e, k);
        t.tidy(() => {
          const b = ahead.batchFrom(loaded);
          assert.deepEqual(b.images.shape, want.shape);
          assert.deepEqual(b.extents, want.extents);
          assert.ok(Buffer.from(b.images.data() as Uint8Array).equals(want.pixels), `epoch ${e} batch ${k}`);
          assert.deepEqual(b.labels!.toArray(), want.labels);
        });
        const shares = await Promise.all(workers.map((w) => w.load(e, k)));
        assert.deepEqual(shares.flatMap((s) => s.indices), want.indices, 'the workers\' shares make the global batch');
        assert.deepEqual(shares[0]!.counts, [14, 13, 13]);
      }
    // A jump (a resumed run) is served too.
    const jump = await ahead.load(1, 3);
    assert.deepEqual(jump.indices, inPlace.positions(1, 3).indices);
  } finally {
    for (const l of [inPlace, ahead, ...workers]) l.dispose();
  }
  rmSync(dir, { recursive: true });
  rmSync(cache, { recursive: true });
});

test('crops and the evaluation centre crop of an image on a larger canvas are those of the image alone', () =>
  t.tidy(() => {
    t.manualSeed(0);
    const image = t.rand([1, 3, 30, 40]);
    // Padded as the loader pads: the last column, then the last row, repeated.
    const wide = t.cat([image, image.narrow(3, 39, 1).expand(1, 3, 30, 8)], 3);
    const canvas = t.cat([wide, wide.narrow(2, 29, 1).expand(1, 3, 13, 48)], 2);
    const extents = Int32Array.from([30, 40]);
    const key = { seed: 3, epoch: 1, indices: [17] };
    for (const o of [t.simclrViewOptions(28), t.fineTuneViewOptions(28), { ...t.fineTuneViewOptions(28), crop: { pixelAligned: true } }]) {
      const alone = t.simclrViews(image, o, key);
      const placed = t.simclrViews(canvas, o, key, extents);
      // Equal up to float rounding of the grid's coordinates (which colour jitter can magnify a little).
      for (const v of [0, 1]) {
        const diff = alone[v]!.sub(placed[v]!).abs().amax([0, 1, 2, 3]).item();
        assert.ok(diff < 1e-4, `view ${v}: ${diff}`);
      }
    }
    const evalAlone = t.centerCropResize(image, 28);
    const evalPlaced = t.centerCropResize(canvas, 28, undefined, extents);
    assert.ok(evalAlone.sub(evalPlaced).abs().amax([0, 1, 2, 3]).item() < 1e-5);
  }));

test('simclr data stopped by a signal part way: the next run decodes only the shards not written', async () => {
  const dir = await folder();
  const cache = tempDir('simclr-cache-');
  const cli = join(__dirname, '..', 'src', 'cli', 'main.js');
  const env = { ...process.env, SIMCLR_CACHE: cache, SIMCLR_SHARD_IMAGES: String(SHARD) };
  const args = [cli, 'data', '--data', dir, '--image-size', String(SIZE), '--channels', '3'];
  const shards = join(shardDir(cache, dir, SIZE, 3));
  const child = spawn(process.execPath, args, { env, stdio: 'ignore' });
  // Stopped once two shards are written (or when it would have finished anyway).
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      let done = 0;
      try {
        done = readdirSync(shards).filter((f) => f.endsWith('.json')).length;
      } catch {}
      if (done >= 2) {
        clearInterval(poll);
        child.kill('SIGINT');
      }
    }, 20);
    child.on('exit', () => {
      clearInterval(poll);
      resolve();
    });
  });
  const kept = readdirSync(shards).filter((f) => f.endsWith('.json')).length;
  const again = await new Promise<string>((resolve, reject) => {
    const c = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b));
    c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${out}`))));
  });
  const total = Number(/, (\d+) shards \(/.exec(again)?.[1]);
  const decoded = /decoded (\d+) images \((\d+) shards\)/.exec(again);
  assert.ok(total >= 6, again);
  assert.ok(kept >= 2, `${kept} shards kept`);
  assert.equal(Number(decoded?.[2] ?? 0), total - kept, again);
  assert.ok(readdirSync(shards).every((f) => /^[0-9a-f]{24}\.(bin|json)$/.test(f)), `no half-written shard or stale claim left: ${readdirSync(shards).join(', ')}`);
  rmSync(dir, { recursive: true });
  rmSync(cache, { recursive: true });
});

test('a claim whose holder is gone, whose PID another process has now, or whose lease ran out is taken over; a live one is waited for', () => {
  const dir = tempDir('simclr-claims-');
  const lock = join(dir, 'k.lock');
  const old = new Date(Date.now() - 5 * 60_000);
  // PID 1 is alive, but it started at another time than the claim says: the PID was reused.
  writeFileSync(lock, JSON.stringify({ host: hostname(), pid: 1, start: 'another-time' }));
  assert.equal(claimShard(dir, 'k'), true);
  assert.equal(JSON.parse(readFileSync(lock, 'utf8')).pid, process.pid, 'the claim is this process now');
  // Another host's claim, renewed lately: waited for; its lease run out: taken over.
  writeFileSync(lock, JSON.stringify({ host: 'elsewhere.example', pid: 1, start: 'x' }));
  assert.equal(claimShard(dir, 'k'), false);
  utimesSync(lock, old, old);
  assert.equal(claimShard(dir, 'k'), true);
  // An earlier version's bare PID of a live process: waited for while fresh, taken over once old.
  writeFileSync(lock, '1');
  assert.equal(claimShard(dir, 'k'), false);
  utimesSync(lock, old, old);
  assert.equal(claimShard(dir, 'k'), true);
  rmSync(dir, { recursive: true });
});

test('a stale claim on a missing shard does not hold a reader up; a shard cut short is decoded again', async () => {
  const dir = await folder();
  const cache = tempDir('simclr-cache-');
  const first = await open(dir, cache);
  const before = batches(first);
  first.stored!.close();
  const shards = shardDir(cache, dir, SIZE, 3);
  const key = shardFiles(cache, dir).find((f) => f.endsWith('.json'))!.replace('.json', '');
  rmSync(join(shards, `${key}.bin`));
  rmSync(join(shards, `${key}.json`));
  writeFileSync(join(shards, `${key}.lock`), JSON.stringify({ host: hostname(), pid: 1, start: 'another-time' }));
  const started = Date.now();
  const again = await open(dir, cache);
  assert.equal(again.decodedShards, 1);
  assert.ok(Date.now() - started < 20_000, 'the reused PID did not hold it up');
  assert.deepEqual(batches(again), before);
  again.stored!.close();
  const other = shardFiles(cache, dir).find((f) => f.endsWith('.bin'))!;
  truncateSync(join(shards, other), Math.floor(statSync(join(shards, other)).size / 2));
  const cut = await open(dir, cache);
  assert.equal(cut.decodedShards, 1, 'the shard cut short is decoded again');
  assert.deepEqual(batches(cut), before);
  cut.stored!.close();
  rmSync(dir, { recursive: true });
  rmSync(cache, { recursive: true });
});

test('two jobs share a cache while a file of the folder changes: the second keeps the shard the first still reads, and both finish', async () => {
  const dir = await folder();
  const cache = tempDir('simclr-cache-');
  const first = await open(dir, cache);
  const before = readImages(first, range(0, first.count)).pixels.length;
  const touched = join(dir, 'bird', readdirSync(join(dir, 'bird'))[20]!);
  utimesSync(touched, new Date(), new Date(Date.now() + 10_000));
  const script = `require(${JSON.stringify(join(__dirname, '..', 'src', 'data'))}).openDataset(${JSON.stringify(dir)}, { imageSize: ${SIZE}, channels: 3, cacheDir: ${JSON.stringify(cache)}, shardImages: ${SHARD}, quiet: true }).then((ds) => console.log(ds.decodedShards))`;
  const second = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b));
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}`))));
  });
  assert.equal(second, '1', "the second job decoded the changed file's shard");
  // The first job's old shard is still there, and it reads every image.
  assert.equal(readImages(first, range(0, first.count)).pixels.length, before);
  first.stored!.close();
  assert.ok(existsSync(dir));
  rmSync(dir, { recursive: true });
  rmSync(cache, { recursive: true });
});
