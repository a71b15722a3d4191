// The whole pipeline on a tiny budget (a few hundred CIFAR-10 images, one epoch a stage):
// the run folder, resume equality, and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as t from '../src';
import { DATASETS, tempDir } from './helpers';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const root = tempDir('simclr-pipeline-');
const cache = join(root, 'cache');
const env = { ...process.env, SIMCLR_CACHE: cache };
const simclr = (args: string[], extraEnv: Record<string, string> = {}) =>
  spawnSync(process.execPath, [MAIN, ...args, '--threads', '1'], { encoding: 'utf8', env: { ...env, ...extraEnv } });

function copyImages(split: 'train' | 'test', perClass: number): string {
  const dir = join(root, split);
  for (const c of ['airplane', 'cat', 'ship']) {
    mkdirSync(join(dir, c), { recursive: true });
    for (const f of readdirSync(join(DATASETS, 'cifar10', split, c)).slice(0, perClass)) copyFileSync(join(DATASETS, 'cifar10', split, c, f), join(dir, c, f));
  }
  return dir;
}
const train = copyImages('train', 100);
const testDir = copyImages('test', 30);
const tiny = ['--width', '0.125', '--pretrain-epochs', '1', '--pretrain-batch', '64', '--finetune-epochs', '1', '--supervised-epochs', '1', '--distill-epochs', '1'];

test('the pipeline writes a complete run folder, and eval and predict read it', () => {
  const run = join(root, 'run');
  const r = simclr(['pipeline', '--data', train, '--test-data', testDir, '--labels', '10%', '--out', run, ...tiny, '--zero-init-residual']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /test top-1 \(%\)\s+10pct/);
  assert.match(r.stdout, /finetune margin\s+[+-]\d+\.\d\d/);
  for (const f of ['config.json', 'metrics.jsonl', 'labels-10pct.txt', 'pretrain.safetensors', 'pretrain.json', 'finetune-10pct.safetensors', 'distill-10pct.safetensors', 'supervised-10pct.safetensors', 'results.json', 'report.html']) {
    assert.ok(existsSync(join(run, f)), `missing ${f}`);
  }
  const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  assert.deepEqual(config.classes, ['airplane', 'cat', 'ship']);
  assert.equal(config.pretrain.encoder.width, 0.125);
  assert.equal(config.norm.mean.length, 3);
  // each stage's crops as documented: whole pixels for the baseline only
  const crops = (stage: string) => JSON.parse(readFileSync(join(run, `${stage}.json`), 'utf8')).config.pixelAlignedCrops;
  assert.deepEqual(['supervised-10pct', 'finetune-10pct', 'distill-10pct'].map(crops), [true, false, false]);
  assert.equal(config.pretrain.views.crop.pixelAligned, false);
  // zero-init residual blocks (the official init_zero) only where asked: here the encoder and so the student, not the baseline
  const zeroInit = (stage: string) => JSON.parse(readFileSync(join(run, `${stage}.json`), 'utf8')).config.arch.encoder.zeroInitResidual;
  assert.equal(config.pretrain.encoder.zeroInitResidual, true);
  assert.deepEqual(['supervised-10pct', 'distill-10pct'].map(zeroInit), [false, true]);
  const { results } = JSON.parse(readFileSync(join(run, 'results.json'), 'utf8')) as { results: { stage: string; top1: number }[] };
  assert.deepEqual(results.map((x) => x.stage).sort(), ['distill-10pct', 'finetune-10pct', 'supervised-10pct']);
  assert.ok(results.every((x) => x.top1 >= 0 && x.top1 <= 100));
  const metrics = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(metrics.some((m) => m.stage === 'pretrain' && typeof m.contrastive_acc === 'number' && typeof m.lr === 'number' && typeof m.images_per_s === 'number'));
  // The validation split (10% of 300) is held out; the labels are drawn from the rest, and every stage reports on both.
  const valIds = readFileSync(join(run, 'val.txt'), 'utf8').trim().split('\n');
  const labelIds = readFileSync(join(run, 'labels-10pct.txt'), 'utf8').trim().split('\n');
  assert.equal(valIds.length, 30);
  assert.equal(labelIds.length, 27, '10% of the 270 images left');
  assert.deepEqual(labelIds.filter((id) => valIds.includes(id)), [], 'no labeled image is a validation image');
  const withVal = JSON.parse(readFileSync(join(run, 'results.json'), 'utf8')).results as { val_top1?: number; val_images?: number }[];
  assert.ok(withVal.every((x) => typeof x.val_top1 === 'number' && x.val_top1 >= 0 && x.val_top1 <= 100 && x.val_images === 30), JSON.stringify(withVal));
  assert.match(r.stdout, /validation top-1 \(%\)\s+10pct/);
  assert.ok(metrics.some((m) => m.stage === 'finetune-10pct' && typeof m.val_top1 === 'number'), 'validation top-1 in the metrics');
  const html = readFileSync(join(run, 'report.html'), 'utf8');
  assert.match(html, /<table class="results">.*finetune-10pct/s);
  assert.match(html, /id="chart-loss"/);
  assert.match(html, /id="chart-confusion"/, 'the full report, written when the pipeline ends');
  assert.doesNotMatch(html, /(src|href)="https?:/, 'no outside requests');
  const ev = simclr(['eval', '--model', run, '--knn', '--linear', '--linear-epochs', '3']);
  assert.equal(ev.status, 0, ev.stderr);
  assert.match(ev.stdout, /kNN \(k=200, T=0\.1\) top-1 \d+\.\d+% on 90 images/);
  const lin = /linear evaluation \(frozen, all 300 training labels, 3 epochs\) top-1 (\d+\.\d+)% on 90 images/.exec(ev.stdout);
  assert.ok(lin, ev.stdout);
  assert.ok(Number(lin[1]) > 33.4, `linear evaluation ${lin[1]}% is not above chance (3 classes)`);
  assert.match(ev.stdout, /distill-10pct: top-1 \d+\.\d+%/);
  const img = join(testDir, 'cat', readdirSync(join(testDir, 'cat'))[0]!);
  const pr = simclr(['predict', '--model', run, img, '--json']);
  assert.equal(pr.status, 0, pr.stderr);
  const out = JSON.parse(pr.stdout) as { model: string; predictions: { file: string; class: string; probability: number }[] };
  assert.match(out.model, /distill-10pct$/);
  assert.ok(['airplane', 'cat', 'ship'].includes(out.predictions[0]!.class));
  assert.ok(out.predictions[0]!.probability > 0 && out.predictions[0]!.probability <= 1);
});

test('a stopped and resumed pretraining ends with the same weights as an uninterrupted one', () => {
  const args = (out: string) => ['pretrain', '--data', train, '--out', out, '--width', '0.125', '--epochs', '2', '--batch', '64', '--seed', '3'];
  const a = join(root, 'straight');
  const b = join(root, 'resumed');
  assert.equal(simclr(args(a)).status, 0);
  const first = simclr(args(b), { SIMCLR_STOP_AFTER_STEPS: '6' });
  assert.equal(first.status, 130, first.stderr);
  const meta = JSON.parse(readFileSync(join(b, 'pretrain.json'), 'utf8'));
  assert.deepEqual([meta.epoch, meta.batch, meta.step], [1, 2, 6], 'stopped mid-epoch 2 after 6 steps');
  const second = simclr(['pretrain', '--out', b, '--resume']);
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stdout, /resuming pretrain after epoch 1, batch 2 \(step 6\)/);
  t.tidy(() => {
    const wa = t.loadSafetensors(join(a, 'pretrain.safetensors')).tensors;
    const wb = t.loadSafetensors(join(b, 'pretrain.safetensors')).tensors;
    assert.deepEqual([...wa.keys()].sort(), [...wb.keys()].sort());
    for (const [k, v] of wa) {
      const diff = v.to('float64').sub(wb.get(k)!.to('float64')).abs().amax([...v.shape.keys()]).item();
      assert.equal(diff, 0, `${k} differs by ${diff}`);
    }
  });
});

/** Weights of two checkpoints are identical. */
function assertSameWeights(a: string, b: string): void {
  t.tidy(() => {
    const wa = t.loadSafetensors(a).tensors;
    const wb = t.loadSafetensors(b).tensors;
    assert.deepEqual([...wa.keys()].sort(), [...wb.keys()].sort());
    for (const [k, v] of wa) {
      const diff = v.to('float64').sub(wb.get(k)!.to('float64')).abs().amax([...v.shape.keys()]).item();
      assert.equal(diff, 0, `${k} differs by ${diff}`);
    }
  });
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal} mid-epoch stops within a step with a checkpoint, and --resume with the same command line ends level`, async () => {
    const args = (out: string) => ['pretrain', '--data', train, '--out', out, '--width', '0.125', '--epochs', '2', '--batch', '8', '--seed', '5'];
    const straight = join(root, `sig-straight-${signal}`);
    const stopped = join(root, `sig-stopped-${signal}`);
    assert.equal(simclr(args(straight)).status, 0);
    const child = spawn(process.execPath, [MAIN, ...args(stopped), '--threads', '1'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const metrics = join(stopped, 'metrics.jsonl');
    const stepsSeen = () => (existsSync(metrics) ? readFileSync(metrics, 'utf8').trim().split('\n').length : 0);
    // Signal once a few steps of the first epoch (37 steps) have run.
    let sentAt = 0;
    while (sentAt === 0) {
      await new Promise((r) => setTimeout(r, 20));
      if (stepsSeen() >= 3) {
        sentAt = stepsSeen();
        child.kill(signal);
      }
    }
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, signal === 'SIGTERM' ? 143 : 130, stderr);
    assert.match(stderr, new RegExp(`${signal}: stopping after this step and saving a checkpoint`));
    const meta = JSON.parse(readFileSync(join(stopped, 'pretrain.json'), 'utf8'));
    assert.equal(meta.epoch, 0, 'stopped in the first epoch');
    assert.ok(meta.batch >= sentAt && meta.batch <= sentAt + 2, `stopped at batch ${meta.batch}, the signal came after step ${sentAt}`);
    const resumed = simclr([...args(stopped), '--resume']);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.match(resumed.stdout, new RegExp(`resuming pretrain after epoch 0, batch ${meta.batch}`));
    assertSameWeights(join(straight, 'pretrain.safetensors'), join(stopped, 'pretrain.safetensors'));
  });
}

test('pretrain with --resume always given (a restarted pod, a requeued job): starts a run in an empty folder, continues it after; without images it needs a run', () => {
  const out = join(root, 'always-resume');
  const args = ['pretrain', '--data', train, '--out', out, '--width', '0.125', '--epochs', '1', '--batch', '64', '--max-images', '128', '--threads', '1', '--resume'];
  const first = simclr(args);
  assert.equal(first.status, 0, first.stderr);
  assert.doesNotMatch(first.stdout, /resuming/, 'the first start trains from scratch');
  assert.ok(existsSync(join(out, 'pretrain.safetensors')));
  const again = simclr(args);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /resuming pretrain after epoch 1/);
  const none = simclr(['pretrain', '--out', join(root, 'no-run'), '--resume']);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /no-run: not a simclr run folder \(no config\.json\)/);
});

test('bad input gives a clear message and a non-zero exit, and keeps what was saved', () => {
  const run = join(root, 'run');
  const cases: [string[], number, RegExp][] = [
    [['finetune', '--from', run, '--labels', '0%'], 2, /--labels must be a percentage/],
    [['pretrain', '--data', train, '--out', join(root, 'b1'), '--batch', '1'], 2, /--batch must be an integer >= 2 \(for NT-Xent each image's negatives are the others\), got '1'/],
    [['finetune', '--from', run, '--labels', '10%', '--batch', '1'], 2, /--batch must be an integer >= 2 \(batch norm cannot train on one image\), got '1'/],
    [['pretrain', '--data', train, '--out', join(root, 'w0'), '--width', '0'], 2, /--width must be a number >= 0.0625/],
    [['finetune', '--from', join(root, 'nope'), '--labels', '10%'], 2, /nope: not a simclr run folder \(no config\.json\)/],
    [['pretrain', '--data', train, '--out', run], 2, /already holds a run; pass --resume/],
    [['pipeline', '--data', train, '--out', run, '--epochs', '3'], 2, /unknown option --epochs for 'pipeline'; stage options take the stage's prefix: --pretrain-epochs/],
    [['finetune', '--from', run, '--labels', '10%', '--bogus', '1'], 2, /unknown option --bogus for 'finetune'/],
  ];
  for (const [args, code, pattern] of cases) {
    const r = simclr(args);
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  // Resuming: the command that started a run, plus --resume; a changed setting or other compute settings are refused.
  const recordedCompute = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).compute as { precision: string; threads: number };
  assert.deepEqual([typeof recordedCompute.precision, recordedCompute.threads], ['string', 1], 'config.json records the compute settings');
  const otherPrecision = recordedCompute.precision === 'bf16' ? 'fp32' : 'bf16';
  for (const [args, pattern] of [
    [['pretrain', '--out', run, '--resume', '--epochs', '5'], /--resume continues the run with its recorded settings, and these differ: --epochs \(recorded 1, given 5\)/],
    [['pretrain', '--out', run, '--resume', '--width', '0.5'], /these differ: --width \(recorded 0\.125, given 0\.5\)/],
    [['pretrain', '--out', run, '--resume', '--precision', otherPrecision], new RegExp(`was trained with --precision ${recordedCompute.precision} .*; this process has --precision ${otherPrecision} .*pass --force-settings`)],
    [['finetune', '--from', run, '--labels', '10%', '--resume', '--lr', '0.5'], /finetune-10pct: --resume continues the run with its recorded settings, and these differ: --lr \(recorded 0\.05, given 0\.5\)/],
  ] as [string[], RegExp][]) {
    const r = simclr(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
  for (const [args, pattern] of [
    [['pretrain', '--out', run, '--resume', '--temperature', '0.2'], /--temperature \(recorded 0\.5, given 0\.2\)/],
    [['pretrain', '--out', run, '--resume', '--test-data', train], /--test-data \(recorded "[^"]*test", given "[^"]*train"\)/],
    [['pipeline', '--data', train, '--test-data', testDir, '--labels', '10%', '--out', run, '--finetune-epochs', '5'], /--finetune-epochs \(recorded 1, given 5\)/],
  ] as [string[], RegExp][]) {
    const r = simclr(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
  // The pipeline run again without its stage options continues with the recorded ones: nothing left to train.
  const again = simclr(['pipeline', '--data', train, '--test-data', testDir, '--labels', '10%', '--out', run, '--width', '0.125']);
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stdout, /epoch 1\/30/, 'the recorded 1 epoch, not the default 30');
  const same = simclr(['pretrain', '--data', train, '--out', run, '--width', '0.125', '--epochs', '1', '--batch', '64', '--resume']);
  assert.equal(same.status, 0, same.stderr);
  const forced = simclr(['pretrain', '--out', run, '--resume', '--precision', otherPrecision, '--force-settings']);
  assert.equal(forced.status, 0, forced.stderr);
  // A teacher whose class count differs from the data.
  const metaFile = join(run, 'finetune-10pct.json');
  const original = readFileSync(metaFile, 'utf8');
  const meta = JSON.parse(original);
  meta.config.arch.numClasses = 5;
  writeFileSync(metaFile, JSON.stringify(meta));
  const d = simclr(['distill', '--teacher', run, '--labels', '10%', '--epochs', '1']);
  assert.equal(d.status, 2);
  assert.match(d.stderr, /the teacher .*finetune-10pct has 5 classes, but .* has 3/);
  writeFileSync(metaFile, original);
  // A NaN loss stops with the step named; the checkpoint saved before stays as it was.
  const before = readFileSync(join(run, 'finetune-10pct.safetensors'));
  // Resuming keeps the recorded settings: make the recorded rate absurd to get a NaN.
  const finetuneMeta = join(run, 'finetune-10pct.json');
  const recorded = JSON.parse(readFileSync(finetuneMeta, 'utf8'));
  Object.assign(recorded.config.settings, { lr: 3e38, epochs: 3 });
  writeFileSync(finetuneMeta, JSON.stringify(recorded));
  const nan = simclr(['finetune', '--from', run, '--labels', '10%', '--resume']);
  assert.equal(nan.status, 1, nan.stderr);
  assert.match(nan.stderr, /finetune-10pct: the (loss|weights) became NaN or infinite at step \d+; stopped, and kept the last good checkpoint/);
  assert.deepEqual(readFileSync(join(run, 'finetune-10pct.safetensors')), before);
});

test.after(() => rmSync(root, { recursive: true, force: true }));
