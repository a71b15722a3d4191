// Which images to label: the strategies on embeddings with known clusters, then the chain a
// user runs: pretrain on a flat folder, suggest-labels, the labeling page (headless
// Chromium, key presses), finetune --labeled on the filled-in CSV.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as t from '../src';
import { selectToLabel, typicality } from '../src/select';
import { startLabelServer } from '../src/label';
import { readLabelCsv } from '../src/data';
import type { KeyInput } from 'puppeteer-core';
import { launchBrowser } from './browser';
import { DATASETS, tempDir } from './helpers';

/** Three tight blobs of 60 points (around three axes) and one far point, L2-normalised, [181, 8]. */
function blobs(): t.Tensor {
  t.manualSeed(0);
  return t.tidy(() => {
    const parts = [0, 1, 2].map((axis) => t.tensor(new Int32Array(60).fill(axis)).to('int64').oneHot(8).to('float32').add(t.randn([60, 8]).mul(0.05)));
    const outlier = t.tensor([[0, 0, 0, 0, 0, 0, 0.7, 0.7]]);
    return t.F.normalize(t.cat([...parts, outlier], 0), { dim: 1 });
  });
}
const blobOf = (i: number) => (i < 180 ? Math.floor(i / 60) : 3);

test('typical and kmeans choose one image from each cluster, never the outlier, and skip covered clusters', () => {
  const x = blobs();
  for (const strategy of ['typical', 'kmeans'] as const) {
    const picks = selectToLabel({ features: x, labeled: new Set(), count: 3, strategy, seed: 1 });
    assert.deepEqual(picks.map((p) => blobOf(p.index)).sort(), [0, 1, 2], strategy);
    assert.deepEqual(selectToLabel({ features: x, labeled: new Set(), count: 3, strategy, seed: 1 }).map((p) => p.index), picks.map((p) => p.index), 'the same seed, the same choice');
    // blob 0 has a label: two more choices come from the other blobs
    const next = selectToLabel({ features: x, labeled: new Set([5]), count: 2, strategy, seed: 1 });
    assert.deepEqual(next.map((p) => blobOf(p.index)).sort(), [1, 2], `${strategy} after a label`);
  }
  const random = selectToLabel({ features: x, labeled: new Set([0, 1]), count: 10, strategy: 'random', seed: 3 });
  assert.equal(new Set(random.map((p) => p.index)).size, 10);
  assert.ok(random.every((p) => p.index > 1));
  const conf = Float32Array.from({ length: 181 }, (_, i) => (i === 42 ? 0.1 : 0.9));
  assert.equal(selectToLabel({ features: x, labeled: new Set(), count: 1, strategy: 'uncertain', seed: 0, confidence: conf })[0]!.index, 42);
  assert.throws(() => selectToLabel({ features: x, labeled: new Set(), count: 182, strategy: 'typical', seed: 0 }), /more than the 181 images/);
  // typicality: a blob's points are far more typical than the lone point among them
  const typ = typicality(x, [...Array.from({ length: 60 }, (_, i) => i), 180]);
  assert.ok(typ[60]! < Math.min(...typ.slice(0, 60)) / 3);
  x.dispose();
});

const root = tempDir('simclr-label-');
const env = { ...process.env, SIMCLR_CACHE: join(root, 'cache') };
const simclr = (args: string[]) => spawnSync(process.execPath, [join(__dirname, '..', 'src', 'cli', 'main.js'), ...args, '--threads', '1'], { encoding: 'utf8', env, cwd: root });

test('suggest-labels, the labeling page and finetune --labeled, chained as a user would', async () => {
  const photos = join(root, 'photos');
  mkdirSync(photos, { recursive: true });
  for (const c of ['airplane', 'frog', 'truck']) {
    for (const f of readdirSync(join(DATASETS, 'cifar10', 'train', c)).slice(0, 60)) copyFileSync(join(DATASETS, 'cifar10', 'train', c, f), join(photos, `${c}_${f}`));
  }
  const run = join(root, 'run');
  const p = simclr(['pretrain', '--unlabeled', photos, '--out', run, '--width', '0.125', '--epochs', '1', '--batch', '60']);
  assert.equal(p.status, 0, p.stderr);
  const s = simclr(['suggest-labels', '--model', run, '--count', '10', '--out', 'to-label.csv']);
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stdout, /10 of 180 unlabeled images chosen \(typical\)/);
  const csv = join(root, 'to-label.csv');
  const first = readFileSync(csv, 'utf8');
  assert.equal(first.trim().split('\n').length, 11);
  assert.match(first.split('\n')[0]!, /^path,label,cluster,typicality,confidence,why$/);
  assert.ok(existsSync(join(root, 'to-label.png')));
  // the same seed writes the same file
  assert.equal(simclr(['suggest-labels', '--model', run, '--count', '10', '--out', 'again.csv']).status, 0);
  assert.equal(readFileSync(join(root, 'again.csv'), 'utf8'), first);

  // the page: ten answers by key presses, with a skip and an undo among them
  const server = await startLabelServer({ suggestions: csv, classes: ['airplane', 'frog', 'truck'], port: 0 });
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}/`);
    await page.waitForSelector('body[data-ready="yes"]');
    const answer = async (key: KeyInput) => {
      const before = await page.$eval('#progress', (e) => e.textContent);
      await page.keyboard.press(key);
      await page.waitForFunction(`document.querySelector('#progress').textContent !== ${JSON.stringify(before)}`);
    };
    for (const key of ['1', '2', '3', 's', '1', 'u', '2', '3', '1', '2', '3', '1'] as const) await answer(key);
    assert.equal(await page.$eval('#done', (e) => e.getAttribute('hidden')), null, 'the page says every image has an answer');
    // only this page may write: another Host, or a form's text/plain body, is refused
    const refused = await new Promise<number[]>((done) => {
      const codes: number[] = [];
      const send = (headers: Record<string, string>, then: () => void) => {
        const req = request(`${server.url}/label`, { method: 'POST', headers }, (res) => (codes.push(res.statusCode ?? 0), res.resume(), then()));
        req.end(JSON.stringify({ row: 0, label: 'truck' }));
      };
      send({ host: 'evil.example', 'content-type': 'application/json' }, () => send({ 'content-type': 'text/plain' }, () => done(codes)));
    });
    assert.deepEqual(refused, [421, 415]);
  } finally {
    await browser.close();
    await server.close();
  }
  const rows = readFileSync(csv, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
  assert.deepEqual(rows.map((r) => r[1]), ['airplane', 'frog', 'truck', '', 'frog', 'truck', 'airplane', 'frog', 'truck', 'airplane']);
  assert.equal(rows[3]!.at(-1), 'yes', 'the skipped row says so');
  assert.equal(readLabelCsv(csv).images.length, 9);

  const f = simclr(['finetune', '--from', run, '--labeled', 'to-label.csv', '--epochs', '1']);
  assert.equal(f.status, 0, f.stderr);
  assert.match(f.stdout, /finetune-to-label: 9 images \(9 labeled\)/);
  assert.ok(existsSync(join(run, 'finetune-to-label.safetensors')));
  // a filled-in file is never written over
  const over = simclr(['suggest-labels', '--model', run, '--count', '5', '--out', 'to-label.csv']);
  assert.equal(over.status, 2);
  assert.match(over.stderr, /to-label\.csv holds 9 labels already: write the suggestions to another --out/);
  // a second round: the nine labeled images count as covered and are not suggested again
  const again = simclr(['suggest-labels', '--model', run, '--count', '5', '--labeled', 'to-label.csv', '--out', 'round2.csv']);
  assert.equal(again.status, 0, again.stderr);
  const labeled = new Set(readLabelCsv(csv).images.map((i) => i.file));
  const round2 = readFileSync(join(root, 'round2.csv'), 'utf8').trim().split('\n').slice(1);
  assert.equal(round2.length, 5);
  for (const line of round2) assert.ok(!labeled.has(join(root, line.split(',')[0]!)), line);
});
