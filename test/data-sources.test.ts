// Every data source on small real data, the cache, label subsets, and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import * as t from '../src';
import { BatchLoader, openDataset, range, readImages, squareFrames, parseLabelSpec, readSubsetFile, stratifiedSubset, validationSplit, writeSubsetFile, FASHION_MNIST_DIR, readIdx } from '../src/data';
import { DATASETS, tempDir } from './helpers';

const CIFAR = join(DATASETS, 'cifar10');
const CLASSES = ['airplane', 'cat', 'ship'];

/** A few hundred CIFAR-10 JPEGs copied into a temporary folder: 3 classes x perClass. */
function cifarFolder(split: 'train' | 'test', perClass: number): string {
  const dir = tempDir('simclr-data-');
  for (const c of CLASSES) {
    mkdirSync(join(dir, c));
    readdirSync(join(CIFAR, split, c))
      .slice(0, perClass)
      .forEach((f) => copyFileSync(join(CIFAR, split, c, f), join(dir, c, f)));
  }
  return dir;
}

async function sharp() {
  return (await import('sharp')).default;
}

test('an image folder: classes sorted, labels right, any format, size and mode, non-images counted', async () => {
  const dir = cifarFolder('train', 40);
  const s = await sharp();
  // Odd images in their own class: PNG, WebP, gray, RGBA, and not square.
  const odd = join(dir, 'zz-odd');
  mkdirSync(odd);
  const raw = (w: number, h: number, c: 1 | 3 | 4) => s(Buffer.alloc(w * h * c, 200), { raw: { width: w, height: h, channels: c } });
  await raw(50, 20, 3).png().toFile(join(odd, 'wide.png'));
  await raw(40, 40, 1).png().toFile(join(odd, 'gray.png'));
  await raw(33, 47, 4).png().toFile(join(odd, 'rgba.png'));
  await raw(64, 64, 3).webp().toFile(join(odd, 'pic.webp'));
  writeFileSync(join(odd, 'notes.txt'), 'not an image');
  const cache = tempDir('simclr-cache-');
  const ds = await openDataset(dir, { imageSize: 32, channels: 3, cacheDir: cache });
  assert.equal(ds.count, 3 * 40 + 4);
  assert.deepEqual(ds.classes, [...CLASSES, 'zz-odd']);
  assert.deepEqual([...new Set(ds.labels!)], [0, 1, 2, 3]);
  assert.equal(ds.labels!.filter((l) => l === 1).length, 40);
  assert.equal(ds.ids[40], 'cat/0000.jpg');
  assert.equal(ds.skipped.nonImages, 1);
  assert.equal(squareFrames(ds, range(0, ds.count)).length, ds.count * 3 * 32 * 32);
  // The gray PNG came out with three equal channels at value 200.
  const gi = ds.ids.indexOf('zz-odd/gray.png');
  const grayPng = readImages(ds, [gi]);
  assert.deepEqual([grayPng.height, grayPng.width], [37, 37], 'a 40px image is kept at 1.15x of 32');
  const plane = 37 * 37;
  assert.equal(grayPng.pixels[0], 200);
  assert.equal(grayPng.pixels[plane], 200);
  // Stored sizes: the shorter side between 32 and 37, the longer side up to 4:3.
  const extentOf = (id: string) => { const b = readImages(ds, [ds.ids.indexOf(id)]); return [b.height, b.width]; };
  assert.deepEqual(extentOf('zz-odd/wide.png'), [32, 43], '50x20 is enlarged to a 32px shorter side, cropped to 4:3');
  assert.deepEqual(extentOf('zz-odd/rgba.png'), [44, 33]);
  assert.deepEqual(extentOf('cat/0000.jpg'), [32, 32], 'a 32px image is stored as it is');
  const gray = await openDataset(dir, { imageSize: 16, channels: 1, cacheDir: cache });
  assert.equal(squareFrames(gray, range(0, gray.count)).length, gray.count * 16 * 16);
  // Unlabeled: a flat folder of images.
  const flat = join(dir, 'cat');
  const unlabeled = await openDataset(flat, { cacheDir: null });
  assert.equal(unlabeled.labels, null);
  assert.equal(unlabeled.count, 40);
  assert.ok(!readdirSync(dir).some((f) => f.endsWith('.json') || f.endsWith('.u8')), 'nothing written beside the data');
  rmSync(dir, { recursive: true });
  rmSync(cache, { recursive: true });
});

test('the cache is reused, and invalidated when a file changes', async () => {
  const dir = cifarFolder('test', 20);
  const cache = tempDir('simclr-cache-');
  const first = await openDataset(dir, { cacheDir: cache });
  assert.equal(first.fromCache, false);
  assert.deepEqual(readdirSync(cache).map((f) => f.replace(/^[0-9a-f]+\./, '.')).sort(), ['.shape.json', 'folders'], 'the shards\' folder, the images\' shapes');
  const second = await openDataset(dir, { cacheDir: cache });
  assert.equal(second.fromCache, true);
  assert.deepEqual(Buffer.from(readImages(second, range(0, 60)).pixels), Buffer.from(readImages(first, range(0, 60)).pixels));
  assert.deepEqual(second.labels, first.labels);
  const file = join(dir, 'cat', readdirSync(join(dir, 'cat'))[0]!);
  utimesSync(file, new Date(), new Date(Date.now() + 5000));
  assert.equal((await openDataset(dir, { cacheDir: cache })).fromCache, false, 'a touched file invalidates');
  rmSync(join(dir, 'ship', readdirSync(join(dir, 'ship'))[0]!));
  const fewer = await openDataset(dir, { cacheDir: cache });
  assert.equal(fewer.fromCache, false, 'a removed file invalidates');
  assert.equal(fewer.count, 59);
  rmSync(dir, { recursive: true });
  rmSync(cache, { recursive: true });
});

test('idx files cut from Fashion-MNIST, resized and converted', async () => {
  const dir = tempDir('simclr-idx-');
  const images = readIdx(join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
  const labels = readIdx(join(FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz'));
  const n = 200;
  const head = (magic: number, dims: number[]) => {
    const b = Buffer.alloc(4 + 4 * dims.length);
    b.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
    return b;
  };
  writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(Buffer.concat([head(0x803, [n, 28, 28]), Buffer.from(images.data.subarray(0, n * 784))])));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), Buffer.concat([head(0x801, [n]), Buffer.from(labels.data.subarray(0, n))]));
  const ds = await openDataset(`fashion-mnist:${dir}`);
  assert.equal(ds.count, n);
  assert.equal(ds.size, 28);
  assert.equal(ds.channels, 1);
  assert.deepEqual([...ds.labels!.subarray(0, 20)], [...labels.data.subarray(0, 20)]);
  assert.equal(ds.classes[9], 'Ankle boot');
  const rgb = await openDataset(`fashion-mnist:${dir}`, { imageSize: 32, channels: 3 });
  assert.equal(rgb.pixels!.length, n * 3 * 32 * 32);
  await assert.rejects(openDataset(`fashion-mnist:${dir}`, { split: 'test' }), /t10k-images-idx3-ubyte\(\.gz\) not found\. Install Fashion-MNIST with `apt-get install dataset-fashion-mnist`/);
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), Buffer.concat([head(0x801, [n]), Buffer.alloc(n, 12)]));
  await assert.rejects(openDataset(`fashion-mnist:${dir}`), /train label 0 is 12, outside 0..9/);
  rmSync(dir, { recursive: true });
});

test('the CIFAR-10 and CIFAR-100 binary releases', async () => {
  const dir = tempDir('simclr-cifarbin-');
  const record = (label: number[], fill: number) => Buffer.concat([Buffer.from(label), Buffer.alloc(3072, fill)]);
  for (let b = 1; b <= 5; b++) writeFileSync(join(dir, `data_batch_${b}.bin`), Buffer.concat([record([b], b), record([9], 100)]));
  writeFileSync(join(dir, 'test_batch.bin'), record([3], 7));
  writeFileSync(join(dir, 'batches.meta.txt'), 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n');
  const train = await openDataset(`cifar10-bin:${dir}`);
  assert.equal(train.count, 10);
  assert.deepEqual([...train.labels!], [1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
  assert.equal(train.classes[3], 'cat');
  assert.equal(train.pixels![2 * 3072], 2);
  const test = await openDataset(`cifar10-bin:${dir}`, { split: 'test' });
  assert.equal(test.count, 1);
  assert.ok(test.ids.every((id) => !train.ids.includes(id)), 'train and test ids never overlap');
  writeFileSync(join(dir, 'train.bin'), Buffer.concat([record([1, 57], 1), record([2, 99], 2)]));
  const c100 = await openDataset(`cifar100-bin:${dir}`);
  assert.deepEqual([...c100.labels!], [57, 99]);
  writeFileSync(join(dir, 'test_batch.bin'), record([12], 0));
  await assert.rejects(openDataset(`cifar10-bin:${dir}`, { split: 'test' }), /has label 12, outside 0..9/);
  writeFileSync(join(dir, 'test_batch.bin'), Buffer.alloc(3000));
  await assert.rejects(openDataset(`cifar10-bin:${dir}`, { split: 'test' }), /test_batch.bin: 3000 bytes is not a whole number of 3073-byte records/);
  rmSync(dir, { recursive: true });
});

test('label subsets: stratified, repeatable from the seed, saved and reused exactly, never from the test split', async () => {
  const trainDir = cifarFolder('train', 30);
  const testDir = cifarFolder('test', 10);
  const train = await openDataset(trainDir, { cacheDir: null });
  const testSet = await openDataset(testDir, { cacheDir: null });
  const a = stratifiedSubset(train.labels!, parseLabelSpec('10%'), 7);
  assert.equal(a.length, 9);
  assert.deepEqual(stratifiedSubset(train.labels!, parseLabelSpec('10%'), 7), a);
  assert.notDeepEqual(stratifiedSubset(train.labels!, parseLabelSpec('10%'), 8), a);
  const perClass = stratifiedSubset(train.labels!, parseLabelSpec('5/class'), 7);
  assert.deepEqual([0, 1, 2].map((c) => perClass.filter((i) => train.labels![i] === c).length), [5, 5, 5]);
  assert.deepEqual(parseLabelSpec('1%'), { fraction: 0.01 });
  assert.throws(() => parseLabelSpec('abc'), /--labels must be a percentage/);
  assert.throws(() => stratifiedSubset(train.labels!, parseLabelSpec('31/class'), 0), /class 0 has only 30 images/);
  const file = join(tempDir(), 'labeled.txt');
  writeSubsetFile(file, train, a);
  assert.deepEqual(readSubsetFile(file, train), a);
  const chosen = new Set(a.map((i) => join(trainDir, train.ids[i]!)));
  assert.ok(testSet.ids.every((id) => !chosen.has(join(testDir, id))), 'no test image is in the subset');
  assert.throws(() => readSubsetFile(file, testSet), /line 1: 'airplane\/\d+\.jpg' is not an image of/);
  rmSync(trainDir, { recursive: true });
  rmSync(testDir, { recursive: true });
});

test('the loader: seeded shuffles, drop-last, uint8 batches with labels', () =>
  t.tidy(() => {
    const count = 10;
    const ds = { pixels: Uint8Array.from({ length: count * 4 }, (_, i) => Math.floor(i / 4)), count, channels: 1 as const, size: 2, labels: Int32Array.from({ length: count }, (_, i) => i % 3), classes: ['a', 'b', 'c'], ids: [], source: 'memory', skipped: { nonImages: 0, bad: [] } };
    const loader = new BatchLoader(ds, { batchSize: 4, seed: 3, dropLast: true });
    assert.equal(loader.batchesPerEpoch(), 2);
    const batches = [...loader.epoch(0)];
    assert.equal(batches.length, 2);
    const b = batches[0]!;
    assert.equal(b.images.dtype, 'uint8');
    assert.deepEqual(b.images.shape, [4, 1, 2, 2]);
    assert.deepEqual(b.images.select(1, 0).select(1, 0).select(1, 0).toArray(), b.indices);
    assert.deepEqual(b.labels!.toArray(), b.indices.map((i) => i % 3));
    assert.deepEqual(loader.order(0), new BatchLoader(ds, { batchSize: 4, seed: 3 }).order(0), 'same seed, same order');
    assert.notDeepEqual(loader.order(0), loader.order(1), 'a new order each epoch');
    assert.equal(new BatchLoader(ds, { batchSize: 4 }).batchesPerEpoch(), 3);
    // 10 images in batches of 3 would leave one alone (batch norm cannot train on it): it joins the batch before.
    const kept = new BatchLoader(ds, { batchSize: 3, seed: 1 });
    assert.equal(kept.batchesPerEpoch(), 3);
    const sizes = [...kept.epoch(0)].map((batch) => batch.indices.length);
    assert.deepEqual(sizes, [3, 3, 4]);
    assert.deepEqual([...kept.epoch(0)].flatMap((batch) => batch.indices).sort((a, b) => a - b), range(0, 10), 'every image once');
    kept.dispose();
    assert.throws(() => new BatchLoader(ds, { batchSize: 11, dropLast: true }), /10 images are fewer than one batch of 11/);
    loader.dispose();
  }));

test('bad input: each case names the file or folder; the cache keeps whole shards only, with what could not be decoded', async () => {
  const dir = cifarFolder('test', 5);
  const cache = tempDir('simclr-cache-');
  writeFileSync(join(dir, 'cat', 'broken.jpg'), Buffer.from('this is not a jpeg'));
  const real = readFileSync(join(dir, 'ship', readdirSync(join(dir, 'ship'))[0]!));
  writeFileSync(join(dir, 'ship', 'truncated.jpg'), real.subarray(0, Math.floor(real.length / 2)));
  await assert.rejects(openDataset(dir, { cacheDir: cache }), /cat\/broken\.jpg: cannot decode the image .*\(and 1 more\); fix or remove it, or pass --skip-bad-images/);
  const shards = readdirSync(join(cache, 'folders')).flatMap((d) => readdirSync(join(cache, 'folders', d)));
  assert.ok(shards.length > 0 && shards.every((f) => /^[0-9a-f]{24}\.(bin|json)$/.test(f)), `whole shards only: ${shards.join(', ')}`);
  // The unreadable files are remembered: reading again decodes nothing, and fails the same way.
  await assert.rejects(openDataset(dir, { cacheDir: cache }), /cat\/broken\.jpg: cannot decode the image .*\(and 1 more\)/);
  const skipped = await openDataset(dir, { cacheDir: cache, skipBad: true });
  assert.equal(skipped.decodedImages, 0, 'skipping them needs no decoding either');
  assert.equal(skipped.count, 15);
  assert.deepEqual(skipped.skipped.bad.sort(), ['cat/broken.jpg', 'ship/truncated.jpg']);
  assert.equal(skipped.labels!.length, 15);
  mkdirSync(join(dir, 'empty-class'));
  await assert.rejects(openDataset(dir, { cacheDir: cache }), /empty-class: the class folder 'empty-class' holds no images/);
  const empty = tempDir();
  await assert.rejects(openDataset(empty, { cacheDir: cache }), /no images found/);
  await assert.rejects(openDataset(join(dir, 'missing'), { cacheDir: cache }), /missing: cannot read the image folder \(ENOENT\): check the path/);
  await assert.rejects(openDataset('cifar10-bin:', {}), /cifar10-bin needs its folder/);
  rmSync(dir, { recursive: true });
  rmSync(cache, { recursive: true });
  rmSync(empty, { recursive: true });
});

test('validation split: stratified, capped, apart from the label subset, and refused where a label list overlaps it', () => {
  const labels = Int32Array.from({ length: 60000 }, (_, i) => i % 10);
  const val = validationSplit(labels, '10%', 0);
  assert.equal(val.length, 5000, 'capped at 5,000');
  const perClass = new Array<number>(10).fill(0);
  for (const i of val) perClass[labels[i]!]!++;
  assert.deepEqual(perClass, new Array(10).fill(500), 'stratified');
  assert.deepEqual(validationSplit(labels, '0', 0), []);
  assert.equal(validationSplit(labels.subarray(0, 1000), '0.1', 3).length, 100);
  assert.equal(validationSplit(labels, '300', 1).length, 300);
  assert.throws(() => validationSplit(labels, '100%', 0), /--val must be a percentage under 100%/);
  assert.throws(() => validationSplit(labels, 'lots', 0), /--val must be .* got 'lots'/);
  const held = new Set(val);
  const subset = stratifiedSubset(labels, parseLabelSpec('1%'), 0, held);
  assert.equal(subset.length, 550, '1% of the 55,000 left');
  assert.ok(subset.every((i) => !held.has(i)));
});

test('the package exports the data layer as t.data, as the README shows', async () => {
  const dir = cifarFolder('test', 10);
  const ds = await t.data.openDataset(dir, { imageSize: 32, channels: 3, cacheDir: null });
  assert.equal(ds.count, 30);
  assert.deepEqual(ds.classes, CLASSES);
  const batch = t.data.readImages(ds, [0, 29]);
  assert.deepEqual([batch.count, batch.channels, batch.height, batch.width], [2, 3, 32, 32]);
  assert.equal(batch.pixels.length, 2 * 3 * 32 * 32);
  rmSync(dir, { recursive: true, force: true });
});
