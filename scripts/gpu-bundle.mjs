#!/usr/bin/env node
// Packs, into .gpu-bundle/, what scripts/gpu-check.sh needs on a GPU machine that has a CUDA
// PyTorch and a compiler but no Node.js and no data (the device machines lent to some
// sessions; see DEVELOPERS.md): this Node.js (xz), npm with its node-gyp, the Node-API
// headers node-gyp compiles against, node-addon-api, and CIFAR-10 images in the binary
// release's format (cifar10-bin:DIR, 1,000 of them as its test batch: no image decoder
// needed there). scripts/gpu-remote.sh
// unpacks it there and runs the check. Build dist/ first (npx tsc).
//
//   node scripts/gpu-bundle.mjs [--images N]     (default 5120: 20 steps of 256)
//
// The bundle is about 45 MB; carry it with dist (the device tool's carry: [".gpu-bundle", "dist"]).
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const at = args.indexOf('--images');
const images = at >= 0 ? Number(args[at + 1]) : 5120;
if (!Number.isInteger(images) || images < 5) throw new Error(`--images must be a whole number of at least 5, got ${args[at + 1]}`);
const cifar = join(root, '..', 'shared', 'datasets', 'cifar10', 'train');
if (!existsSync(join(root, 'dist', 'src', 'data', 'index.js'))) throw new Error('no dist/: run npx tsc first');
if (!existsSync(cifar)) throw new Error(`${cifar}: CIFAR-10 as an image folder is needed (../shared/datasets)`);

const out = join(root, '.gpu-bundle');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const say = (m) => process.stderr.write(`gpu-bundle: ${m}\n`);

// Node.js itself, and npm (node-gyp lives in it), laid out as an install prefix.
say(`node ${process.version} (${process.execPath})`);
execFileSync('bash', ['-c', `xz -T2 -6 -c "${process.execPath}" > "${join(out, 'node.xz')}"`]);
const npmDir = resolve(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
if (!existsSync(join(npmDir, 'node_modules', 'node-gyp'))) throw new Error(`${npmDir}: npm with node-gyp not found`);
execFileSync('tar', ['-C', dirname(npmDir), '-cJf', join(out, 'npm.tar.xz'), 'npm']);

// The headers a Node-API addon compiles against, and the gypi files node-gyp reads from --nodedir.
const include = join(out, 'nodedir', 'include', 'node');
mkdirSync(include, { recursive: true });
for (const f of ['node_api.h', 'node_api_types.h', 'js_native_api.h', 'js_native_api_types.h', 'node_version.h', 'common.gypi', 'config.gypi']) {
  const from = join('/usr/include/node', f);
  if (existsSync(from)) copyFileSync(from, join(include, f));
  else if (!f.endsWith('.gypi') && f !== 'node_version.h') throw new Error(`${from} not found (Debian's libnode-dev has the Node-API headers)`);
}
cpSync(dirname(require.resolve('node-addon-api/package.json')), join(out, 'node_modules', 'node-addon-api'), { recursive: true });
// The run report inlines the chart libraries' browser builds: each package's manifest, the
// module it resolves to and its minified build (src/report/libs.ts), not the whole package.
for (const [name, build] of [['vega', 'vega.min.js'], ['vega-lite', 'vega-lite.min.js'], ['vega-embed', 'vega-embed.min.js']]) {
  const main = require.resolve(name);
  const pkgDir = resolve(dirname(main), '..');
  const to = join(out, 'node_modules', name);
  for (const file of [join(pkgDir, 'package.json'), main, join(dirname(main), build)]) {
    const target = join(to, file.slice(pkgDir.length));
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(file, target);
  }
}

// CIFAR-10 training images as the binary release: five data_batch files of label + RGB planes.
const { listImages, decodeImages } = await import(join(root, 'dist', 'src', 'data', 'index.js'));
const list = listImages(cifar);
const step = Math.max(1, Math.floor(list.files.length / images));
const picked = Array.from({ length: Math.min(images, list.files.length) }, (_, i) => i * step);
say(`decoding ${picked.length} CIFAR-10 images`);
const { pixels } = await decodeImages(picked.map((i) => list.files[i]), 32, 3);
const dir = join(out, 'cifar10-bin');
mkdirSync(dir, { recursive: true });
const per = Math.ceil(picked.length / 5);
for (let b = 0; b < 5; b++) {
  const rows = picked.slice(b * per, (b + 1) * per);
  const buf = Buffer.alloc(rows.length * 3073);
  rows.forEach((i, r) => {
    const k = b * per + r;
    buf[r * 3073] = list.labels[i];
    buf.set(pixels.subarray(k * 3072, (k + 1) * 3072), r * 3073 + 1);
  });
  writeFileSync(join(dir, `data_batch_${b + 1}.bin`), buf);
}
writeFileSync(join(dir, 'batches.meta.txt'), `${list.classes.join('\n')}\n`);

// 1,000 test images (test_batch.bin): the classifier stages evaluate on them.
const testList = listImages(join(cifar, '..', 'test'));
const testStep = Math.floor(testList.files.length / 1000);
const testPicked = Array.from({ length: 1000 }, (_, i) => i * testStep);
const { pixels: testPixels } = await decodeImages(testPicked.map((i) => testList.files[i]), 32, 3);
const testBuf = Buffer.alloc(testPicked.length * 3073);
testPicked.forEach((i, r) => {
  testBuf[r * 3073] = testList.labels[i];
  testBuf.set(testPixels.subarray(r * 3072, (r + 1) * 3072), r * 3073 + 1);
});
writeFileSync(join(dir, 'test_batch.bin'), testBuf);
execFileSync('du', ['-sh', out], { stdio: 'inherit' });
