// Commands that read images: --skip-bad-images on each of them, and image folders read as
// what their images are (--channels auto, --image-size auto).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FASHION_MNIST_DIR, loadIdxSplit, openDataset } from '../src/data';
import { DATASETS, tempDir } from './helpers';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const root = tempDir('simclr-images-');
const env = { ...process.env, SIMCLR_CACHE: join(root, 'cache') };
const simclr = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args, '--threads', '1'], { encoding: 'utf8', env });

/** 2 classes x 24 CIFAR-10 JPEGs and one file that is not a JPEG at all. */
function folderWithABrokenImage(): string {
  const dir = join(root, 'broken');
  for (const c of ['cat', 'ship']) {
    mkdirSync(join(dir, c), { recursive: true });
    for (const f of readdirSync(join(DATASETS, 'cifar10', 'train', c)).slice(0, 24)) copyFileSync(join(DATASETS, 'cifar10', 'train', c, f), join(dir, c, f));
  }
  writeFileSync(join(dir, 'cat', 'broken.jpg'), 'not a jpeg');
  return dir;
}

test('--skip-bad-images works on every command that reads images, and the run remembers it', () => {
  const dir = folderWithABrokenImage();
  const run = join(root, 'run');
  const tiny = ['--width', '0.125', '--epochs', '1', '--batch', '16'];
  const refused = simclr('pretrain', '--data', dir, '--out', run, ...tiny);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /cat\/broken\.jpg: cannot decode the image .*or pass --skip-bad-images/);
  const pre = simclr('pretrain', '--data', dir, '--out', run, ...tiny, '--skip-bad-images', '--test-data', dir);
  assert.equal(pre.status, 0, pre.stderr);
  assert.match(pre.stdout, /skipped 1 unreadable image: cat\/broken\.jpg/);
  assert.equal(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).skipBadImages, true);
  // Later stages read the data as the run was made, without the flag.
  const fine = simclr('finetune', '--from', run, '--labels', '50%', '--epochs', '1', '--batch', '16');
  assert.equal(fine.status, 0, fine.stderr);
  assert.match(fine.stdout, /skipped 1 unreadable image: cat\/broken\.jpg/);
  assert.match(fine.stdout, /finetune-50pct: (\d+) images \(\1 labeled\), 1 epochs, lr 0\.05; 5 held out for validation/);
  const ev = simclr('eval', '--model', run, '--skip-bad-images');
  assert.equal(ev.status, 0, ev.stderr);
  assert.match(ev.stdout, /finetune-50pct: top-1 \d+\.\d+%, top-5 \d+\.\d+% on 48 images/);
  const good = join(dir, 'ship', readdirSync(join(dir, 'ship'))[0]!);
  const bad = join(dir, 'cat', 'broken.jpg');
  const predictRefused = simclr('predict', '--model', run, good, bad);
  assert.equal(predictRefused.status, 1);
  assert.match(predictRefused.stderr, /broken\.jpg: cannot decode the image/);
  const pr = simclr('predict', '--model', run, good, bad, '--skip-bad-images', '--json');
  assert.equal(pr.status, 0, pr.stderr);
  assert.match(pr.stderr, /skipped 1 unreadable image: .*broken\.jpg/);
  assert.equal((JSON.parse(pr.stdout) as { predictions: unknown[] }).predictions.length, 1);
  const views = simclr('views', '--data', join(dir, 'cat'), '--out', join(root, 'v.png'), '--count', '40', '--skip-bad-images');
  assert.equal(views.status, 0, views.stderr);
  const data = simclr('data', '--data', dir, '--skip-bad-images');
  assert.equal(data.status, 0, data.stderr);
  assert.match(data.stdout, /48 images, RGB 32x32, 2 classes/);
});

test('a folder of 28x28 grayscale PNGs is read as 1-channel 28x28 images, and says why', async () => {
  const sharp = (await import('sharp')).default;
  const dir = join(root, 'gray');
  const fm = loadIdxSplit(FASHION_MNIST_DIR, 'test');
  for (let i = 0; i < 40; i++) {
    const cls = join(dir, `c${fm.labels[i]}`);
    mkdirSync(cls, { recursive: true });
    await sharp(Buffer.from(fm.images.subarray(i * 784, (i + 1) * 784)), { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').png().toFile(join(cls, `${i}.png`));
  }
  const r = simclr('data', '--data', dir);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /40 images, gray 28x28/);
  assert.match(r.stdout, /size: auto: every image is 28x28; channels: auto: every image has one channel/);
  const forced = simclr('data', '--data', dir, '--channels', '3', '--image-size', '32');
  assert.match(forced.stdout, /40 images, RGB 32x32/);
  assert.match(forced.stdout, /size: set by --image-size; channels: set by --channels/);
  // Colour photos of several sizes: RGB at the photo size, 96.
  const mixed = join(root, 'mixed');
  mkdirSync(mixed);
  const jpegs = readdirSync(join(DATASETS, 'cifar10', 'test', 'dog')).slice(0, 3);
  await sharp(join(DATASETS, 'cifar10', 'test', 'dog', jpegs[0]!)).resize(48, 40).toFile(join(mixed, 'a.png'));
  copyFileSync(join(DATASETS, 'cifar10', 'test', 'dog', jpegs[1]!), join(mixed, 'b.jpg'));
  const ds = await openDataset(mixed, { cacheDir: join(root, 'cache') });
  assert.deepEqual([ds.channels, ds.size], [3, 96]);
  assert.match(ds.auto.imageSize, /differ in size/);
  // The run's config.json records the choice.
  const run = join(root, 'gray-run');
  const pre = simclr('pretrain', '--data', dir, '--out', run, '--width', '0.125', '--epochs', '1', '--batch', '20', '--test-data', dir);
  assert.equal(pre.status, 0, pre.stderr);
  const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  assert.deepEqual([config.imageSize, config.channels, config.pretrain.encoder.inChannels], [28, 1, 1]);
  assert.match(config.chosen.channels, /every image has one channel/);
});

test.after(() => rmSync(root, { recursive: true, force: true }));
