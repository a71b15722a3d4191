// Data-parallel workers on the classifier stages, eval and the pipeline, through the command
// line, on a small Fashion-MNIST (600 training and 600 test images written as IDX files, and
// the test images again as a PNG folder for the streamed evaluation): 2 workers against 1 at
// the same global batch, eval's figures on 1 and 2 workers, a stage stopped on one number of
// workers and resumed on another, and the pipeline on 2 workers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadIdxSplit, FASHION_MNIST_DIR } from '../src/data/idx';
import { tempDir } from './helpers';
import { labeledSubset, validationSubset } from '../src/run';
import { RunFolder } from '../src/train';
import type { ImageDataset } from '../src/data';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const root = tempDir('simclr-stages-');
after(() => rmSync(root, { recursive: true, force: true }));
const env = { ...process.env, SIMCLR_CACHE: join(root, 'cache'), SIMCLR_CHECK_WEIGHTS: '1' };
const COMPUTE = ['--precision', 'fp32', '--channels-last', 'off'];

function simclr(args: string[], extra: Record<string, string> = {}) {
  return spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { ...env, ...extra } });
}

/** The first `count` images of a Fashion-MNIST split as raw IDX files in `dir`. */
function writeIdx(dir: string, split: 'train' | 'test', count: number): void {
  const s = loadIdxSplit(FASHION_MNIST_DIR, split);
  const header = (dims: number[]) => {
    const b = Buffer.alloc(4 + 4 * dims.length);
    b.writeUInt32BE(0x800 + dims.length, 0);
    dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
    return b;
  };
  const base = split === 'train' ? 'train' : 't10k';
  writeFileSync(join(dir, `${base}-images-idx3-ubyte`), Buffer.concat([header([count, 28, 28]), Buffer.from(s.images.subarray(0, count * 784))]));
  writeFileSync(join(dir, `${base}-labels-idx1-ubyte`), Buffer.concat([header([count]), Buffer.from(s.labels.subarray(0, count))]));
}

const fmDir = join(root, 'fm');
mkdirSync(fmDir, { recursive: true });
writeIdx(fmDir, 'train', 600);
writeIdx(fmDir, 'test', 600);
const FM = `fashion-mnist:${fmDir}`;

/** The 600 test images as PNGs in class folders: eval's streamed path. */
async function pngFolder(): Promise<string> {
  const sharp = (await import('sharp')).default;
  const dir = join(root, 'test-png');
  const s = loadIdxSplit(fmDir, 'test');
  for (let i = 0; i < s.count; i++) {
    const cls = join(dir, `c${s.labels[i]}`);
    mkdirSync(cls, { recursive: true });
    await sharp(Buffer.from(s.images.subarray(i * 784, (i + 1) * 784)), { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').png().toFile(join(cls, `${String(i).padStart(4, '0')}.png`));
  }
  return dir;
}

type Metric = Record<string, number | string>;
const metrics = (run: string, stage: string): Metric[] =>
  readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Metric).filter((m) => m.stage === stage);
const steps = (run: string, stage: string): Metric[] => metrics(run, stage).filter((m) => m.loss !== undefined);
const results = (run: string): { stage: string; top1: number }[] => (JSON.parse(readFileSync(join(run, 'results.json'), 'utf8')) as { results: { stage: string; top1: number }[] }).results;

// One pretrained run (1 worker, 2 steps on 200 images) that every test copies.
const base = join(root, 'base');
const pre = simclr(['pretrain', '--data', FM, '--max-images', '200', '--epochs', '1', '--batch', '100', '--width', '0.25', '--lr', '0.3', ...COMPUTE, '--threads', '1', '--out', base]);
assert.equal(pre.status, 0, pre.stderr);
const copyOf = (name: string): string => {
  const dir = join(root, name);
  cpSync(base, dir, { recursive: true });
  return dir;
};

// 100 labeled images (10 per class, 60 held out for validation), 31 a step: 4 steps an epoch,
// shared 16 + 15 between 2 workers (the last 4 + 3), so each worker's loss is weighted by its
// share. At lr 0.01: at 0.05, on an encoder pretrained for 2 steps, rounding differences (1
// thread against 2 in one process as much as 1 worker against 2) grow 100x a step from step 3.
const FINETUNE = ['--labels', '10/class', '--val', '60', '--batch', '31', '--lr', '0.01', ...COMPUTE];
const STAGE = 'finetune-10-per-class';

test('finetune on 2 workers matches 1 worker at the same global batch: every step\'s loss within 0.5%, equal weights on both after each step; rank 0 writes once', () => {
  const one = copyOf('ft1');
  const two = copyOf('ft2');
  const r1 = simclr(['finetune', '--from', one, ...FINETUNE, '--epochs', '1', '--threads', '1']);
  assert.equal(r1.status, 0, r1.stderr);
  const r2 = simclr(['finetune', '--from', two, ...FINETUNE, '--epochs', '1', '--nproc', '2', '--threads', '1']);
  assert.equal(r2.status, 0, r2.stderr);
  const a = steps(one, STAGE);
  const b = steps(two, STAGE);
  assert.equal(a.length, 4);
  assert.equal(b.length, 4, 'rank 0 alone writes the metrics, once per step');
  for (const [i, m] of a.entries()) {
    const rel = Math.abs(Number(m.loss) - Number(b[i]!.loss)) / Number(m.loss);
    assert.ok(rel < 0.005, `step ${m.step}: loss ${m.loss} on 1 worker, ${b[i]!.loss} on 2 (${(rel * 100).toFixed(3)}%)`);
    assert.equal(b[i]!.workers, 2);
    assert.equal(b[i]!.weights_checked, 2, 'both workers\' weights were compared after the step');
  }
  // Step 1's loss is ln 10 (a zero classifier); step 2's is the first that the update shaped.
  assert.ok(Math.abs(Number(a[1]!.loss) - Number(b[1]!.loss)) / Number(a[1]!.loss) < 1e-5, 'after one update (same weights, same keyed views) the loss agrees to float32 rounding');
  assert.equal(metrics(two, STAGE).filter((m) => m.val_top1 !== undefined).length, 1, 'one validation figure');
  assert.deepEqual(results(two).map((r) => r.stage), [STAGE], 'results.json written once');
  assert.equal((r2.stdout.match(/test top-1/g) ?? []).length, 1, r2.stdout);
  assert.match(r2.stdout, /100 images \(100 labeled\), 1 epochs, lr 0\.01; 60 held out for validation; 2 workers/);
  assert.doesNotMatch(r1.stdout, /workers/);
  // Validation and test figures on 1 and 2 workers: nearly the same weights, so within a few images.
  const [v1, v2] = [one, two].map((r) => Number(metrics(r, STAGE).find((m) => m.val_top1 !== undefined)!.val_top1));
  assert.ok(Math.abs(v1! - v2!) <= 100 * (3 / 60) + 1e-9, `validation top-1 ${v1}% on 1 worker, ${v2}% on 2`);
});

test('eval on 2 workers prints the figures of 1 worker exactly: classifiers, kNN and linear evaluation, from the data set and from an image folder', async () => {
  const run = join(root, 'ft2');
  assert.ok(existsSync(join(run, `${STAGE}.safetensors`)), 'the run fine-tuned by the test before');
  const figures = (out: string) => out.split('\n').filter((l) => /top-1/.test(l));
  const args = ['eval', '--model', run, '--knn', '--linear', '--linear-epochs', '2', ...COMPUTE, '--threads', '1'];
  const e1 = simclr(args);
  assert.equal(e1.status, 0, e1.stderr);
  const e2 = simclr([...args, '--nproc', '2']);
  assert.equal(e2.status, 0, e2.stderr);
  assert.equal(figures(e1.stdout).length, 3, e1.stdout);
  assert.deepEqual(figures(e2.stdout), figures(e1.stdout));
  assert.match(e1.stdout, new RegExp(`${STAGE}: top-1 \\d+\\.\\d\\d%, top-5 \\d+\\.\\d\\d% on 600 images`));
  // The streamed path: 600 PNGs in chunks of 250, split between the workers.
  const png = await pngFolder();
  const s1 = simclr([...args, '--test-data', png]);
  assert.equal(s1.status, 0, s1.stderr);
  const s2 = simclr([...args, '--test-data', png, '--nproc', '2']);
  assert.equal(s2.status, 0, s2.stderr);
  assert.equal(figures(s1.stdout).length, 3, s1.stdout);
  assert.deepEqual(figures(s2.stdout), figures(s1.stdout));
});

test('distill on 3 workers matches 1 worker, a last batch of two images included (fewer than the workers: each takes it whole); rank 0 alone writes the metrics and the result', () => {
  const run = join(root, 'ft2');
  const alone = copyOf('distill1');
  cpSync(join(run, `${STAGE}.safetensors`), join(alone, `${STAGE}.safetensors`));
  cpSync(join(run, `${STAGE}.json`), join(alone, `${STAGE}.json`));
  // 258 images, 128 a step: the last batch holds two images, fewer than the 3 workers. (A
  // last batch of one image joins the one before it, so 2 workers never get fewer.)
  const args = ['--labels', '10/class', '--val', '60', '--epochs', '1', '--batch', '128', '--max-images', '258', ...COMPUTE, '--threads', '1'];
  const r1 = simclr(['distill', '--teacher', alone, ...args]);
  assert.equal(r1.status, 0, r1.stderr);
  const r = simclr(['distill', '--teacher', run, ...args, '--nproc', '3']);
  assert.equal(r.status, 0, r.stderr);
  const a = steps(alone, 'distill-10-per-class');
  const m = steps(run, 'distill-10-per-class');
  assert.equal(a.length, 3);
  assert.deepEqual(m.map((x) => [x.step, x.workers, x.weights_checked]), [[1, 3, 3], [2, 3, 3], [3, 3, 3]]);
  for (const [i, x] of a.entries()) {
    const rel = Math.abs(Number(x.loss) - Number(m[i]!.loss)) / Number(x.loss);
    assert.ok(rel < 0.005, `step ${x.step}: loss ${x.loss} on 1 worker, ${m[i]!.loss} on 2 (${(rel * 100).toFixed(3)}%)`);
  }
  assert.deepEqual(results(run).map((x) => x.stage).sort(), ['distill-10-per-class', STAGE]);
  assert.equal((r.stdout.match(/distill-10-per-class: test top-1/g) ?? []).length, 1, r.stdout);
});

test('a stage stopped on 2 workers resumes on 1 (other threads: --force-settings), one stopped on 1 resumes on 2; the steps go on where they stopped', () => {
  // Uninterrupted: 2 epochs on 1 worker with 2 threads.
  const whole = copyOf('whole');
  const w = simclr(['finetune', '--from', whole, ...FINETUNE, '--epochs', '2', '--threads', '2']);
  assert.equal(w.status, 0, w.stderr);
  // Stopped after 2 of 8 steps on 2 workers x 1 thread, then resumed on 1 worker x 2 threads.
  const split = copyOf('split');
  const stopped = simclr(['finetune', '--from', split, ...FINETUNE, '--epochs', '2', '--nproc', '2', '--threads', '1'], { SIMCLR_STOP_AFTER_STEPS: '2' });
  assert.equal(stopped.status, 130, stopped.stderr);
  assert.deepEqual(steps(split, STAGE).map((m) => [m.step, m.workers]), [[1, 2], [2, 2]]);
  const refused = simclr(['finetune', '--from', split, ...FINETUNE, '--epochs', '2', '--threads', '2', '--resume']);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /was trained with --precision fp32 --channels-last off --threads 1; this process has .*--threads 2.*--force-settings/);
  const resumed = simclr(['finetune', '--from', split, ...FINETUNE, '--epochs', '2', '--threads', '2', '--resume', '--force-settings']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stdout, /resuming finetune-10-per-class after epoch 0, batch 2 \(step 2\)/);
  const a = steps(whole, STAGE);
  const b = steps(split, STAGE);
  assert.deepEqual(b.map((m) => m.step), [1, 2, 3, 4, 5, 6, 7, 8]);
  for (const [i, m] of a.entries()) {
    const rel = Math.abs(Number(m.loss) - Number(b[i]!.loss)) / Number(m.loss);
    assert.ok(rel < 0.005, `step ${m.step}: loss ${m.loss} uninterrupted, ${b[i]!.loss} stopped on 2 workers and resumed on 1 (${(rel * 100).toFixed(3)}%)`);
  }
  assert.deepEqual(results(split).map((r) => r.stage), [STAGE]);
  // The reverse, for the baseline: stopped on 1 worker, resumed on 2.
  const sup = copyOf('sup');
  const args = ['supervised', '--from', sup, ...FINETUNE, '--epochs', '1', '--threads', '1'];
  const s1 = simclr(args, { SIMCLR_STOP_AFTER_STEPS: '2' });
  assert.equal(s1.status, 130, s1.stderr);
  const s2 = simclr([...args, '--resume', '--nproc', '2']);
  assert.equal(s2.status, 0, s2.stderr);
  assert.deepEqual(steps(sup, 'supervised-10-per-class').map((m) => [m.step, m.workers ?? 1]), [[1, 1], [2, 1], [3, 2], [4, 2]]);
  assert.deepEqual(results(sup).map((r) => r.stage), ['supervised-10-per-class']);
});

test('pipeline on 2 workers: every stage runs on both in turn; results.json, the report and the results table written once; the report rank 0 makes alone may outlast SIMCLR_DIST_TIMEOUT', () => {
  const out = join(root, 'pipe');
  // The report on Fashion-MNIST's 10,000 test images (about 10 s here) takes longer than the 3 s each worker
  // may wait in a collective: rank 0 makes it after the workers have left the group.
  const timeout = 3;
  const r = simclr([
    'pipeline', '--data', FM, '--test-data', 'fashion-mnist', '--labels', '10/class', '--val', '60', '--out', out, '--width', '0.25', ...COMPUTE,
    '--pretrain-epochs', '1', '--pretrain-batch', '100', '--pretrain-max-images', '200',
    '--supervised-epochs', '1', '--finetune-epochs', '1', '--distill-epochs', '1', '--distill-max-images', '200',
    '--supervised-batch', '50', '--finetune-batch', '50', '--distill-batch', '100',
    '--nproc', '2', '--threads', '1',
  ], { SIMCLR_DIST_TIMEOUT: String(timeout) });
  assert.equal(r.status, 0, r.stderr);
  const reportSeconds = Number(/^report: .*\((\d+\.\d) s\)$/m.exec(r.stdout)?.[1]);
  assert.ok(reportSeconds > timeout, `the report took ${reportSeconds} s, within the ${timeout} s this test needs it to outlast`);
  assert.deepEqual(results(out).map((x) => x.stage).sort(), ['distill-10-per-class', 'finetune-10-per-class', 'supervised-10-per-class']);
  for (const stage of ['pretrain', 'supervised-10-per-class', 'finetune-10-per-class', 'distill-10-per-class']) {
    const m = steps(out, stage);
    assert.equal(m.length, 2, `${stage}: one metrics line per step`);
    assert.ok(m.every((x) => x.workers === 2 && x.weights_checked === 2), `${stage} ran on both workers`);
  }
  assert.ok(existsSync(join(out, 'report.html')) && existsSync(join(out, 'pipeline.json')));
  assert.equal((r.stdout.match(/test top-1 \(%\)/g) ?? []).length, 1, 'one results table');
  assert.equal((r.stdout.match(/^report: distill-10-per-class on 10000 test images/gm) ?? []).length, 1, r.stdout);
});

test('a batch that cannot give every worker an image is a PlanError naming where it came from (exit 2)', () => {
  const run = join(root, 'ft2');
  const given = simclr(['finetune', '--from', run, ...FINETUNE, '--epochs', '1', '--batch', '2', '--nproc', '3', '--threads', '1']);
  assert.equal(given.status, 2, given.stderr);
  assert.match(given.stderr, /simclr: finetune-10-per-class: --batch 2 must hold at least one image per worker \(3 workers\): use fewer workers or --batch 3 or more/);
  // Cut to the stage's images: the message names them, not a --batch 1 never given.
  const cut = simclr(['distill', '--teacher', run, '--labels', '10/class', '--val', '60', '--max-images', '1', '--epochs', '1', ...COMPUTE, '--nproc', '2', '--threads', '1']);
  assert.equal(cut.status, 2, cut.stderr);
  assert.match(cut.stderr, /simclr: distill-10-per-class: the batch \(1, cut from --batch 256 to the stage's 1 image\) must hold at least one image per worker \(2 workers\): use fewer workers\n/);
});

test('the subsets: a worker other than rank 0 reads or draws them without writing (write: false), and gets what rank 0 writes', () => {
  const dir = join(root, 'subsets');
  mkdirSync(dir);
  const run = new RunFolder(dir);
  const ds: ImageDataset = {
    count: 200, channels: 1, size: 28, labels: Int32Array.from({ length: 200 }, (_, i) => i % 10), classes: [...'0123456789'],
    ids: Array.from({ length: 200 }, (_, i) => `train:${i}`), source: 'test', skipped: { nonImages: 0, bad: [] },
  };
  const valFile = join(root, 'my-val.txt');
  const labelsFile = join(root, 'my-labels.txt');
  writeFileSync(valFile, Array.from({ length: 20 }, (_, i) => `train:${i}`).join('\n'));
  writeFileSync(labelsFile, Array.from({ length: 30 }, (_, i) => `train:${100 + i}`).join('\n'));
  for (const files of [false, true]) {
    const [vf, lf] = files ? [valFile, labelsFile] : [undefined, undefined];
    const val = validationSubset(run, ds, '20', 0, vf, { write: false });
    const labeled = labeledSubset(run, ds, '5/class', 0, lf, val, { write: false });
    assert.deepEqual(readdirSync(dir), [], `nothing written${files ? ' (--val-file, --labels-file)' : ''}`);
    assert.deepEqual(validationSubset(run, ds, '20', 0, vf), val);
    assert.deepEqual(labeledSubset(run, ds, '5/class', 0, lf, val), labeled);
    assert.deepEqual(readdirSync(dir).sort(), ['labels-5-per-class.txt', 'val.txt']);
    rmSync(join(dir, 'val.txt'));
    rmSync(join(dir, 'labels-5-per-class.txt'));
  }
});

test('a usage error on rank 0 alone (a --labels-file it reads before the others) ends the run with exit 2 naming rank 0, not restarted, though rank 1 may exit first', () => {
  const run = join(root, 'ft2');
  const labelsFile = join(root, 'unknown-labels.txt');
  writeFileSync(labelsFile, 'train:0\nno-such-image\n');
  const r = simclr(['finetune', '--from', run, ...FINETUNE, '--labels-file', labelsFile, '--epochs', '1', '--threads', '1', '--nproc', '2', '--max-restarts', '1']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /no-such-image/);
  assert.match(r.stderr, /simclr: stopped: worker rank 0 \(pid \d+\) exited with status 2, a usage error that a restart would repeat \(not restarted\)/);
  assert.equal((r.stderr.match(/workers on this machine/g) ?? []).length, 1, 'started once');
});
