// A time budget: parsing, the division into stage lengths, and a pipeline under --budget
// that prints its plan, records it, and says the minutes it used; the laptop recipe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBudget, parseSplit, DEFAULT_SPLIT } from '../src/run/budget';
import { planBudget } from '../src/run/budget/plan';
import { withRecipe } from '../src/run/recipes';
import { DATASETS, tempDir } from './helpers';

test('--budget reads minutes, hours and seconds; --budget-split four shares', () => {
  assert.equal(parseBudget('20m'), 1200);
  assert.equal(parseBudget('2h'), 7200);
  assert.equal(parseBudget('90s'), 90);
  assert.equal(parseBudget('1h30m'), 5400);
  assert.equal(parseBudget('15'), 900);
  for (const bad of ['soon', '10s', '-5m', '']) assert.throws(() => parseBudget(bad), /--budget must be a time/);
  assert.deepEqual(parseSplit('50,10,10,30'), { pretrain: 0.5, supervised: 0.1, finetune: 0.1, distill: 0.3 });
  assert.throws(() => parseSplit('1,2,3'), /four shares/);
});

test('a budget becomes epochs, or one epoch on fewer images where an epoch does not fit', () => {
  const costs = { pretrain: 0.01, train: 0.004, evaluate: 0.001, seconds: 5 };
  const counts = { pool: 10000, labeled: 100, val: 0, test: 1000 };
  // 20 minutes: pretraining's 60% of the 1195 s left is 717 s, 68,286 images at 0.01 s x 1.05: 6.8 epochs of 9,984,
  // so 7 epochs on 9,728 images (38 batches) rather than 6 whole ones and the rest lost
  const long = planBudget({ seconds: 1200, split: DEFAULT_SPLIT, costs, counts, decodeSeconds: 0, pretrainBatch: 256 });
  assert.equal(long.pretrain!.epochs, 7);
  assert.equal(long.pretrain!.maxImages, 9728);
  assert.ok(long.finetune!.epochs > 100, 'a hundred labels take many epochs');
  assert.equal(long.finetune!.maxImages, undefined, 'a classifier stage trains on every label');
  // Work between the stages (the demo's embedding pass) comes out of the stages' time, and is shown
  const reserved = planBudget({ seconds: 1200, split: DEFAULT_SPLIT, costs, counts, decodeSeconds: 0, pretrainBatch: 256, reserve: { what: 'choosing', images: 10000, seconds: 10 } });
  assert.equal(reserved.reserve!.seconds, 20);
  assert.ok(reserved.pretrain!.train < long.pretrain!.train);
  // 2 minutes: under one epoch of pretraining and distillation
  const short = planBudget({ seconds: 120, split: DEFAULT_SPLIT, costs, counts, decodeSeconds: 10, pretrainBatch: 256 });
  assert.equal(short.pretrain!.epochs, 1);
  assert.ok(short.pretrain!.maxImages! > 1000 && short.pretrain!.maxImages! < 10000);
  assert.equal(short.distill!.epochs, 1);
  assert.ok(short.distill!.maxImages! < 10000);
  const planned = (['pretrain', 'supervised', 'finetune', 'distill'] as const).reduce((s, k) => s + short[k]!.train * 1.05 + short[k]!.evaluate, 0);
  assert.ok(planned <= 120 - 10 - 5 + 1, `the stages fit what is left (${planned.toFixed(1)} s)`);
  assert.equal(short.pretrain!.maxImages! % 256, 0, 'pretraining trains whole batches');
  // A slow machine and a tiny budget: still one whole pretraining batch, never fewer images than it.
  const tiny = planBudget({ seconds: 30, split: DEFAULT_SPLIT, costs: { ...costs, pretrain: 0.5 }, counts, decodeSeconds: 10, pretrainBatch: 256 });
  assert.equal(tiny.pretrain!.maxImages, 256);
});

test('the laptop recipe fills what the flags leave, and says where each setting came from', () => {
  const { plan, sources } = withRecipe({ out: 'x', data: { spec: 'fashion-mnist' }, labels: ['1%'], pretrain: { epochs: 3 } }, 'laptop');
  assert.equal(plan.pretrain!.epochs, 3);
  assert.equal(plan.pretrain!.cropMin, 0.2);
  assert.equal(plan.encoder!.width, 0.25);
  assert.equal(sources['--pretrain-epochs'], 'flag');
  assert.equal(sources['--pretrain-crop-min'], 'recipe laptop');
  assert.equal(sources['--width'], 'recipe laptop');
});

test('pipeline --budget prints its plan, records it, keeps to it on a second run and says the minutes it used', () => {
  const root = tempDir('simclr-budget-');
  const photos = join(root, 'photos');
  mkdirSync(photos);
  const rows: string[] = [];
  for (const c of ['bird', 'truck']) {
    readdirSync(join(DATASETS, 'cifar10', 'train', c)).slice(0, 60).forEach((f, i) => {
      copyFileSync(join(DATASETS, 'cifar10', 'train', c, f), join(photos, `${c}_${f}`));
      if (i < 8) rows.push(`photos/${c}_${f},${c}`);
    });
  }
  writeFileSync(join(root, 'labels.csv'), `path,label\n${rows.join('\n')}\n`);
  const env = { ...process.env, SIMCLR_CACHE: join(root, 'cache') };
  const args = ['pipeline', '--unlabeled', photos, '--labeled', 'labels.csv', '--out', 'run', '--budget', '40s', '--recipe', 'laptop', '--threads', '1'];
  const r = spawnSync(process.execPath, [join(__dirname, '..', 'src', 'cli', 'main.js'), ...args], { encoding: 'utf8', env, cwd: root });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^budget 0\.7 min: decoding \d+\.\d min \(done\), calibration \d+\.\d min \(done\)$/m);
  assert.match(r.stdout, /^ {2}pretrain +\d+ epochs?( on \d+ images)? +training \d+\.\d min$/m);
  assert.match(r.stdout, /budget: pretraining done after \d+\.\d min; the other stages planned again on the \d+\.\d min left/);
  const used = /budget 0\.7 min, used (\d+\.\d) min/.exec(r.stdout);
  assert.ok(used, r.stdout);
  const record = JSON.parse(readFileSync(join(root, 'run', 'budget.json'), 'utf8'));
  assert.equal(record.budget, 40);
  assert.ok(record.actualSeconds > 0);
  const config = JSON.parse(readFileSync(join(root, 'run', 'config.json'), 'utf8'));
  assert.equal(config.settingSources.recipe, 'laptop');
  assert.equal(config.pretrain.encoder.width, 0.25);
  // run again: the recorded plan is followed, not planned anew
  const again = spawnSync(process.execPath, [join(__dirname, '..', 'src', 'cli', 'main.js'), ...args], { encoding: 'utf8', env, cwd: root });
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /continuing with the plan it recorded/);
  assert.equal(JSON.parse(readFileSync(join(root, 'run', 'budget.json'), 'utf8')).actualSeconds, record.actualSeconds, "a continued run keeps the first run's minutes");
  // One stage alone: finetune --budget plans that stage only, and a stage given --epochs too is refused.
  writeFileSync(join(root, 'more.csv'), `path,label\n${rows.join('\n')}\n`);
  const one = spawnSync(process.execPath, [join(__dirname, '..', 'src', 'cli', 'main.js'), 'finetune', '--from', 'run', '--labeled', 'more.csv', '--budget', '30s', '--threads', '1'], { encoding: 'utf8', env, cwd: root });
  assert.equal(one.status, 0, one.stderr);
  assert.match(one.stdout, /^budget 0\.5 min: /m);
  assert.match(one.stdout, /^ {2}finetune +\d+ epochs +training \d+\.\d min/m);
  assert.doesNotMatch(one.stdout, /^ {2}(pretrain|distill|supervised) /m);
  const epochs = /finetune-more: \d+ images \(\d+ labeled\), (\d+) epochs/.exec(one.stdout);
  assert.ok(epochs && Number(epochs[1]) > 1, `the budget gave the stage its epochs: ${one.stdout}`);
});
