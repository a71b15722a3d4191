// The `simclr` command as a user runs it: output, exit codes, and errors without stack traces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DATASETS, tempDir } from './helpers';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const simclr = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });

test('simclr info prints the libtorch build, threads and devices', () => {
  const text = simclr('info', '--threads', '1');
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /libtorch: +\d+\.\d+\.\d+ \((CPU|CUDA) build, from /);
  assert.match(text.stdout, /threads: +1 /);
  const json = simclr('info', '--json');
  const info = JSON.parse(json.stdout) as { libtorchVersion: string; devices: string[]; threads: number };
  assert.match(info.libtorchVersion, /^\d+\.\d+\.\d+$/);
  assert.ok(info.devices.includes('cpu'));
});

test('simclr info says which precision, layout and BLAS kernels it chose and why; flags override', () => {
  const auto = simclr('info', '--threads', '1');
  assert.match(auto.stdout, /precision: (bf16|fp32) \(.+\)/);
  assert.match(auto.stdout, /layout: +(channels-last|NCHW) \(.+\)/);
  assert.match(auto.stdout, /BLAS: +\S+/);
  const forced = simclr('info', '--threads', '1', '--precision', 'fp32', '--channels-last', 'off');
  assert.match(forced.stdout, /precision: fp32 \(set by --precision\)/);
  assert.match(forced.stdout, /layout: +NCHW \(set by --channels-last\)/);
  const json = JSON.parse(simclr('info', '--json', '--precision', 'bf16').stdout) as { compute: { precision: string }; blas: { library: string } };
  assert.equal(json.compute.precision, 'bf16');
  assert.ok(json.blas.library.length > 0);
});

test('usage errors name the command or flag and exit 2, without a stack trace', () => {
  for (const [args, pattern] of [
    [['bogus'], /unknown command 'bogus'/],
    [['demo', '--count', '5'], /--count must be an integer >= 10 and <= 5000, got '5'/],
    [['demo', '--budget', 'soon'], /--budget must be a time of at least 30 seconds such as 20m, 2h, 90s or 1h30m, got 'soon'/],
    [['pretrain', '--data', 'fashion-mnist', '--out', 'x', '--budget', '5m', '--epochs', '3'], /give --budget or --epochs, not both: the budget sets the epochs/],
    [['demo', '--seed', '1.5'], /--seed must be an integer >= 0, got '1.5'/],
    [['demo', '--epoch', '3'], /unknown option --epoch for 'demo'/],
    [['info', '--threads'], /--threads needs a value/],
    [['info', '--precision', 'fp16'], /--precision must be fp32, bf16 or auto, got 'fp16'/],
    [['info', '--channels-last', 'yes'], /--channels-last must be on, off or auto, got 'yes'/],
    [['pretrain', '--data', 'fashion-mnist', '--out', '/nonexistent-simclr/x', '--interpolation', 'nearest'], /--interpolation must be bicubic or bilinear, got 'nearest'/],
    [['pretrain', '--data', 'fashion-mnist', '--out', '/nonexistent-simclr/x', '--pixel-crops', 'maybe'], /--pixel-crops takes no value, got 'maybe': write --pixel-crops or --no-pixel-crops/],
    [['supervised', '--from', '/nonexistent-simclr/x', '--interpolation', 'area'], /--interpolation must be bicubic or bilinear, got 'area'/],
    [['pretrain', '--data', 'x'], /--out RUN \(the run folder\) is required/],
  ] as const) {
    const r = simclr(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('a missing data set says how to get it', () => {
  const out = tempDir();
  const r = simclr('data', '--data', 'fashion-mnist:/nonexistent/fmnist');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /\/nonexistent\/fmnist\/train-images-idx3-ubyte\(\.gz\) not found\. Install Fashion-MNIST with `apt-get install dataset-fashion-mnist`/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  rmSync(out, { recursive: true, force: true });
});

test('set-up with a LIBTORCH that is not a libtorch folder says what to do', () => {
  const setup = join(__dirname, '..', '..', 'scripts', 'setup.mjs');
  const r = spawnSync(process.execPath, [setup, '--native'], { encoding: 'utf8', env: { ...process.env, LIBTORCH: '/nonexistent/libtorch' } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /LIBTORCH=\/nonexistent\/libtorch is not a libtorch directory: expected .*version\.h and .*libtorch_cpu\.so\. Point LIBTORCH at/);
});

test('simclr views writes a PNG grid of originals and view pairs from CIFAR-10 images', async () => {
  const dir = tempDir();
  const out = join(dir, 'views.png');
  const r = simclr('views', '--data', join(DATASETS, 'cifar10', 'test'), '--out', out, '--count', '5');
  assert.equal(r.status, 0, r.stderr);
  const sharp = (await import('sharp')).default;
  const meta = await sharp(out).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, (3 * 32 + 4) * 4);
  assert.equal(meta.height, 5 * (32 + 2) * 4);
  const bad = simclr('views', '--data', join(dir, 'nope'), '--out', out);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /nope: cannot read the image folder \(ENOENT\)/);
  rmSync(dir, { recursive: true, force: true });
});

test('simclr data summarises a folder, skips bad images when asked, and writes a label subset', () => {
  const dir = tempDir('simclr-cli-data-');
  const cache = tempDir('simclr-cli-cache-');
  const src = join(DATASETS, 'cifar10', 'test');
  for (const c of ['cat', 'dog']) {
    mkdirSync(join(dir, c));
    for (const f of readdirSync(join(src, c)).slice(0, 30)) copyFileSync(join(src, c, f), join(dir, c, f));
  }
  writeFileSync(join(dir, 'dog', 'bad.jpg'), 'garbage');
  const env = { ...process.env, SIMCLR_CACHE: cache };
  const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env });
  const failed = run('data', '--data', dir);
  assert.equal(failed.status, 1);
  assert.match(failed.stderr, /dog\/bad\.jpg: cannot decode the image .* or pass --skip-bad-images/);
  const out = join(dir, '..', `labeled-${process.pid}.txt`);
  const ok = run('data', '--data', dir, '--skip-bad-images', '--labels', '10/class', '--seed', '3', '--out', out);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /60 images, RGB 32x32, 2 classes/);
  assert.match(ok.stdout, /skipped 1 unreadable image: dog\/bad\.jpg/);
  assert.match(ok.stdout, /wrote .*: 20 labeled images \(10\/class, seed 3\)/);
  assert.equal(readFileSync(out, 'utf8').trim().split('\n').length, 20);
  rmSync(out);
  rmSync(dir, { recursive: true });
  rmSync(cache, { recursive: true });
});
