// simclr export --format web, served from loopback and opened in headless Chromium: with
// ?src= a test image, the page shows the class simclr predict gives, with no console errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as t from '../src';
import { predictImages } from '../src/run';
import { ORT_WEB_FILES } from '../src/export/web';
import { DATASETS, tempDir } from './helpers';
import { makeRun } from './export-fixture';
import { launchBrowser, staticServer } from './browser';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const root = tempDir('simclr-export-web-');
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
t.useCompute({ precision: 'fp32', channelsLast: 'off' });

test('the exported web page classifies ?src= images in headless Chromium as simclr predict does', async () => {
  const classes = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse'];
  const { run } = makeRun(join(root, 'run'), { encoder: { depth: 18, width: 0.25, cifarStem: true, inChannels: 3 }, imageSize: 32, classes, seed: 11 });
  const site = join(root, 'site');
  const r = spawnSync(process.execPath, [MAIN, 'export', '--model', run, '--format', 'web', '--out', site, '--threads', '1'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const f of ['index.html', 'model.onnx', ...ORT_WEB_FILES]) assert.ok(existsSync(join(site, f)), `missing ${f}`);
  const html = readFileSync(join(site, 'index.html'), 'utf8');
  assert.doesNotMatch(html, /https?:\/\/(?!127\.0\.0\.1)[a-z]/i, 'the page loads nothing from outside');

  // Test images beside the page, at the model's size (no resampling, so the browser's pixels are sharp's).
  mkdirSync(join(site, 'images'));
  const images: string[] = [];
  for (const c of ['cat', 'ship', 'horse', 'truck', 'bird', 'dog']) {
    const name = readdirSync(join(DATASETS, 'cifar10', 'test', c))[0]!;
    copyFileSync(join(DATASETS, 'cifar10', 'test', c, name), join(site, 'images', `${c}-${name}`));
    images.push(`${c}-${name}`);
  }
  const expected = await predictImages({ run, files: images.map((f) => join(site, 'images', f)) });

  const server = await staticServer(site);
  cleanups.push(server.close);
  const browser = await launchBrowser();
  cleanups.push(() => browser.close());
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(String(e)));
  const seen: string[] = [];
  for (const img of images) {
    await page.goto(`${server.url}/index.html?src=images/${encodeURIComponent(img)}`);
    await page.waitForSelector('#prediction[data-done], #prediction[data-error]', { timeout: 60_000 });
    const error = await page.$eval('#prediction', (e) => e.getAttribute('data-error'));
    assert.equal(error, null, `${img}: ${error}`);
    seen.push(await page.$eval('#prediction', (e) => e.textContent ?? ''));
    const bars = await page.$$eval('.card .row', (rows) => rows.length);
    assert.equal(bars, 5, 'top-5 bars');
  }
  assert.deepEqual(seen, expected.predictions.map((p) => p.class));
  // Files chosen with the page's file input: a card each, the last one's class as top-1.
  const cardsBefore = await page.$$eval('.card', (c) => c.length);
  const input = await page.$('#file');
  await input!.uploadFile(join(site, 'images', images[1]!), join(site, 'images', images[2]!));
  await page.waitForFunction(`document.querySelectorAll('.card').length === ${cardsBefore + 2}`, { timeout: 60_000 });
  assert.equal(await page.$eval('#prediction', (e) => e.textContent), expected.predictions[2]!.class);
  assert.equal(await page.$$eval('.card .error', (e) => e.length), 0);
  assert.deepEqual(problems, []);
  const shot = join(root, 'web-page.png');
  await page.setViewport({ width: 900, height: 620 });
  await page.screenshot({ path: shot });
  assert.ok(readFileSync(shot).subarray(1, 4).toString() === 'PNG');
});
