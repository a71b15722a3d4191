// The demo in the paper's label regime, as a user's order of work: Fashion-MNIST written as
// image files, pretraining under a budget, suggest-labels choosing images, the simulated
// annotator filling in their labels only, the held-back validation and random draws kept
// apart, the four stages, the summary; run again, it continues instead of starting over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readLabelCsv } from '../src/data';
import { tempDir } from './helpers';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const root = tempDir('simclr-demo-');
const env = { ...process.env, SIMCLR_CACHE: join(root, 'cache') };
const out = join(root, 'run');
const demo = () => spawnSync(process.execPath, [MAIN, 'demo', '--quick', '--budget', '30s', '--count', '20', '--out', out, '--threads', '2'], { encoding: 'utf8', env, timeout: 300_000 });

test('demo --quick: the budget planned, 20 images suggested and labeled from their files only, the four stages and the summary; a second run continues', () => {
  const first = demo();
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /budget 0\.5 min: decoding .* calibration/);
  assert.match(first.stdout, /choosing the labels \(embedding the pool, k-means\)/);
  assert.match(first.stdout, /suggest-labels: 20 of 10000 images to label/);
  for (const row of ['baseline, random labels', 'baseline, suggested labels', 'SimCLR fine-tuned, suggested', 'SimCLR distilled, suggested']) assert.match(first.stdout, new RegExp(`${row} +\\d+\\.\\d\\d +\\d+\\.\\d\\d`));
  assert.match(first.stdout, /on 500 labels the demo holds back .* would not have them/);
  assert.match(first.stdout, /budget 0\.5 min, used \d+\.\d min/);
  // The annotator filled in each suggested image's own class (its folder), and nothing else.
  const suggested = readLabelCsv(join(out, 'to-label.csv')).images;
  assert.equal(suggested.length, 20);
  for (const i of suggested) assert.equal(i.label, basename(dirname(i.file)));
  // The training CSVs: 20 suggested (or random) labels and the same 500 held back, listed for --val-file.
  const withHeld = readLabelCsv(join(out, 'suggested.csv')).images;
  const random = readLabelCsv(join(out, 'random.csv')).images;
  const held = readFileSync(join(out, 'held-back.txt'), 'utf8').trim().split('\n');
  assert.equal(withHeld.length, 520);
  assert.equal(random.length, 520);
  assert.equal(held.length, 500);
  const heldFiles = new Set(held.map((id) => join(env.SIMCLR_CACHE, 'fashion-mnist-images-quick', 'train', id)));
  assert.equal(suggested.filter((i) => heldFiles.has(i.file)).length, 0, 'no suggested image is held back');
  assert.equal(withHeld.filter((i) => heldFiles.has(i.file)).length, 500);
  const results = (JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { results: { stage: string; labeled: number; val_images: number }[] }).results;
  assert.deepEqual(results.map((r) => r.stage).sort(), ['distill-suggested', 'finetune-suggested', 'supervised-random', 'supervised-suggested']);
  for (const r of results.filter((x) => x.stage !== 'distill-suggested')) assert.equal(r.labeled, 20, r.stage);
  for (const r of results) assert.equal(r.val_images, 500, r.stage);
  const budget = JSON.parse(readFileSync(join(out, 'budget.json'), 'utf8')) as { counts: { labeled: number; val: number; test: number }; actualSeconds: number };
  assert.deepEqual(budget.counts, { pool: 10000, labeled: 20, val: 500, test: 2000 });
  assert.ok(budget.actualSeconds > 0);
  // Again on the same folder: the recorded plan, every stage already done.
  const second = demo();
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stdout, /continuing with the plan it recorded/);
  assert.doesNotMatch(second.stdout, /suggest-labels: /);
  assert.match(second.stdout, /continued: this session's \d+\.\d min are not compared with the budget/);
  assert.equal(JSON.parse(readFileSync(join(out, 'budget.json'), 'utf8')).actualSeconds, budget.actualSeconds, "the first run's minutes stay");
});
