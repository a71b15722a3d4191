// The user's own inputs: a flat folder of unlabeled images and a CSV of labeled ones (some in
// the folder, some not) through the pipeline; the label file's errors, each naming its line;
// labeled images recognised in the pool by path or by content; EXIF orientation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openInputs, readLabelCsv, decodeImageBytes, LabelFileError } from '../src/data';
import { loadSafetensors } from '../src/torch';
import { DATASETS, tempDir } from './helpers';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const root = tempDir('simclr-user-data-');
const env = { ...process.env, SIMCLR_CACHE: join(root, 'cache') };
const simclr = (args: string[]) => spawnSync(process.execPath, [MAIN, ...args, '--threads', '1'], { encoding: 'utf8', env, cwd: root });
const CLASSES = ['airplane', 'cat', 'ship'];

/** A flat folder of 100 images a class (renamed <class>_<file>), and 10 more a class elsewhere. */
function makeImages(): { photos: string; extra: string } {
  const photos = join(root, 'photos');
  const extra = join(root, 'more', 'extra');
  mkdirSync(photos, { recursive: true });
  mkdirSync(extra, { recursive: true });
  for (const c of CLASSES) {
    const files = readdirSync(join(DATASETS, 'cifar10', 'train', c)).slice(0, 110);
    files.slice(0, 100).forEach((f) => copyFileSync(join(DATASETS, 'cifar10', 'train', c, f), join(photos, `${c}_${f}`)));
    files.slice(100).forEach((f) => copyFileSync(join(DATASETS, 'cifar10', 'train', c, f), join(extra, `${c}_${f}`)));
  }
  return { photos, extra };
}
const { photos, extra } = makeImages();
const classOf = (name: string) => name.split('_')[0]!;

/** 50 labeled paths: 40 in the flat folder, 10 outside it. */
function writeLabels(): string {
  const inside = readdirSync(photos).filter((_, i) => i % 7 === 0).slice(0, 40);
  const outside = readdirSync(extra).slice(0, 10);
  const rows = [...inside.map((f) => `photos/${f},${classOf(f)}`), ...outside.map((f) => `more/extra/${f},${classOf(f)}`)];
  const file = join(root, 'labels.csv');
  writeFileSync(file, `filename,class\n${rows.join('\n')}\n`);
  return file;
}
const labels = writeLabels();

function testFolder(): string {
  const dir = join(root, 'test');
  for (const c of CLASSES) {
    mkdirSync(join(dir, c), { recursive: true });
    for (const f of readdirSync(join(DATASETS, 'cifar10', 'test', c)).slice(0, 20)) copyFileSync(join(DATASETS, 'cifar10', 'test', c, f), join(dir, c, f));
  }
  return dir;
}

test('a flat unlabeled folder and a CSV of 50 labels run the pipeline end to end', () => {
  const run = join(root, 'run');
  const tiny = ['--width', '0.125', '--pretrain-epochs', '1', '--pretrain-batch', '64', '--finetune-epochs', '1', '--supervised-epochs', '1', '--distill-epochs', '1'];
  const r = simclr(['pipeline', '--unlabeled', photos, '--labeled', labels, '--test-data', testFolder(), '--out', run, ...tiny]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  // 300 in the folder + 10 labeled outside it: the 40 inside are not counted twice
  assert.match(r.stdout, /pretraining ResNet-18 \(width 0\.125\) on 310 images/);
  // 5 or more labels a class: a tenth held out for validation
  assert.match(r.stdout, /finetune-labels: 45 images \(45 labeled\), 1 epochs, lr 0\.05; 5 held out for validation/);
  assert.match(r.stdout, /distill-labels: 310 images \(45 labeled\)/);
  const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  assert.deepEqual(config.classes, CLASSES);
  assert.deepEqual(config.inputs, { unlabeled: [photos], labeled: labels });
  const results = JSON.parse(readFileSync(join(run, 'results.json'), 'utf8')).results.map((x: { stage: string }) => x.stage).sort();
  assert.deepEqual(results, ['distill-labels', 'finetune-labels', 'supervised-labels']);
  // kNN evaluation compares with the labeled images only (the others have no label)
  const e = simclr(['eval', '--model', run, '--knn', '--stage', 'finetune-labels']);
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stdout, /kNN \(k=200, T=0\.1\) top-1 \d+\.\d\d% on 60 images/);
  // the whole folder classified and embedded, streamed, to files a user keeps
  const p = simclr(['predict', '--model', run, '--unlabeled', photos, '--out', 'predictions.csv', '--top', '2']);
  assert.equal(p.status, 0, p.stderr);
  const predicted = readFileSync(join(root, 'predictions.csv'), 'utf8').trim().split('\n');
  assert.equal(predicted.length, 301);
  assert.match(predicted[1]!, /^photos\/[a-z]+_\d+\.jpg,(airplane|cat|ship),0\.\d{4},\w+:0\.\d{4} \w+:0\.\d{4}$/);
  const m = simclr(['embed', '--model', run, '--unlabeled', photos, '--out', 'embeddings.safetensors']);
  assert.equal(m.status, 0, m.stderr);
  const embedded = loadSafetensors(join(root, 'embeddings.safetensors'));
  assert.deepEqual(embedded.tensors.get('embeddings')!.shape, [300, 64]);
  assert.equal(JSON.parse(embedded.metadata.paths!).length, 300);
  // another label set on the same run: 2 a class, so no validation split, and a stage of its own
  const few = join(root, 'few.csv');
  writeFileSync(few, readFileSync(labels, 'utf8').split('\n').filter((l, i) => i === 0 || ['photos/airplane', 'photos/cat', 'photos/ship'].some((p) => l.startsWith(p))).filter((l, i, all) => i === 0 || all.slice(1, i).filter((m) => classOf(m.slice(7)) === classOf(l.slice(7))).length < 2).join('\n'));
  const f = simclr(['finetune', '--from', run, '--labeled', few, '--epochs', '1']);
  assert.equal(f.status, 0, f.stderr);
  assert.match(f.stdout, /finetune-few: 6 images \(6 labeled\)/);
  assert.match(f.stdout, /a class has 2 labels, under 5: no validation split is held out/);
  assert.ok(existsSync(join(run, 'finetune-few.safetensors')));
});

test('the label CSV: a header names the columns, empty labels are not labeled yet', () => {
  const file = join(root, 'header.csv');
  const [a, b] = readdirSync(photos);
  writeFileSync(file, `label,path\n${classOf(a!)},photos/${a}\n,photos/${b}\n`);
  const set = readLabelCsv(file);
  assert.equal(set.images.length, 1);
  assert.equal(set.images[0]!.label, classOf(a!));
  assert.equal(set.unlabeledRows, 1);
});

test('bad label files: each error names the file and line', async () => {
  const [a, b] = readdirSync(photos);
  const cases: [string, RegExp][] = [
    [`path,label\nphotos/${a},cat\nphotos/missing.jpg,cat\n`, /bad\.csv, line 3: 'photos\/missing\.jpg' does not exist/],
    [`path,label\nphotos/${a},cat\nphotos/${b},cat\nphotos/${a},ship\n`, /line 4: 'photos\/[^']+' is labeled 'ship' here and 'cat' at line 2/],
    [`path,label\nlabels.csv,cat\n`, /line 2: 'labels\.csv' is not a \.jpg/],
    [`path,kind\nphotos/${a},cat\n`, /line 1: a header needs a path column/],
  ];
  for (const [text, message] of cases) {
    const file = join(root, 'bad.csv');
    writeFileSync(file, text);
    assert.throws(() => readLabelCsv(file), (e: Error) => e instanceof LabelFileError && message.test(e.message), text);
  }
  // against a run's classes: a label outside them, and a class with no label
  const file = join(root, 'bad.csv');
  writeFileSync(file, `photos/${a},dog\n`);
  await assert.rejects(openInputs({ unlabeled: [], labeled: file }, { classes: CLASSES, cacheDir: null }), /bad\.csv, line 1: the label 'dog' is not one of the run's classes/);
  writeFileSync(file, `photos/${a},cat\n`);
  await assert.rejects(openInputs({ unlabeled: [], labeled: file }, { classes: CLASSES, cacheDir: null }), /no image is labeled 'airplane', 'ship'/);
  writeFileSync(file, `photos/${a},cat\nphotos/${b},cat\n`);
  await assert.rejects(openInputs({ unlabeled: [], labeled: file }, { cacheDir: null }), /every labeled image is 'cat': a classifier needs at least two classes/);
  // the command line names them too, with exit status 2 and no stack trace
  writeFileSync(file, `path,label\nphotos/nothing.png,cat\n`);
  const r = simclr(['pretrain', '--unlabeled', photos, '--labeled', file, '--out', join(root, 'never'), '--epochs', '1']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^simclr: .*bad\.csv, line 2: 'photos\/nothing\.png' does not exist/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('a labeled copy of a pool image (same bytes, another name) is recognised and counted once', async () => {
  const [a] = readdirSync(photos);
  const other = readdirSync(photos).find((f) => classOf(f) !== classOf(a!))!;
  const copies = join(root, 'copies');
  mkdirSync(copies, { recursive: true });
  copyFileSync(join(photos, a!), join(copies, 'renamed.jpg'));
  const file = join(root, 'copy.csv');
  writeFileSync(file, `copies/renamed.jpg,${classOf(a!)}\nphotos/${other},${classOf(other)}\n`);
  const ds = await openInputs({ unlabeled: [photos], labeled: file }, { cacheDir: null, quiet: true });
  assert.equal(ds.count, 300);
  assert.equal(ds.labeledInPool, 2);
  assert.deepEqual(ds.labeledIndices.map((i) => ds.ids[i]).sort(), [a, other].sort());
  ds.stored?.close();
});

test('photos are decoded upright by their EXIF orientation', async () => {
  const sharp = (await import('sharp')).default;
  // 2 x 1: a white pixel left of a black one; orientation 6 shows it turned a quarter clockwise
  const raw = Buffer.from([255, 255, 255, 0, 0, 0]);
  const jpeg = await sharp(raw, { raw: { width: 2, height: 1, channels: 3 } }).resize(16, 8, { kernel: 'nearest' }).withMetadata({ orientation: 6 }).png().toBuffer();
  const upright = await decodeImageBytes(jpeg, 8, 1);
  // upright it is 8 wide x 16 tall: white on top, black below; the centre square crop keeps both halves
  assert.ok(upright[0]! > 200, `top-left should be white, got ${upright[0]}`);
  assert.ok(upright[63]! < 50, `bottom-right should be black, got ${upright[63]}`);
  assert.ok(existsSync(labels));
});
