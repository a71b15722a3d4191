// simclr export --format safetensors-torchvision: the file loads strictly into
// torchvision.models.resnet18 (built as its metadata says) in Debian's PyTorch, which then
// gives our logits within 1e-4; models torchvision cannot hold are refused with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as t from '../src';
import { evalInput } from '../src/augment';
import { torchvisionState } from '../src/export';
import type { Classifier } from '../src/models';
import { PlanError } from '../src/run/errors';
import { PYTHON, tempDir } from './helpers';
import { makeRun, randomClassifier } from './export-fixture';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const SCRIPT = join(__dirname, '..', '..', 'test', 'py', 'torchvision_load.py');
const root = tempDir('simclr-export-tv-');
const simclr = (args: string[]) => spawnSync(process.execPath, [MAIN, ...args, '--threads', '1'], { encoding: 'utf8' });
t.useCompute({ precision: 'fp32', channelsLast: 'off' });

/** The normalised evaluation input for deterministic pseudo-random pixels, and our logits for it. */
function inputsAndLogits(model: Classifier, shape: number[], norm: { mean: number[]; std: number[] }): { x: t.Tensor; logits: t.Tensor } {
  const n = shape.reduce((a, b) => a * b, 1);
  const pixels = Uint8Array.from({ length: n }, (_, i) => (i * 53 + (i >> 6) * 7) % 256);
  return t.noGrad(() => {
    const x = t.tidy(() => evalInput(t.fromBytes(pixels, shape, 'uint8'), shape[2]!, norm));
    model.eval();
    return { x, logits: model.forward(x) };
  });
}

function torchvisionLogits(modelFile: string, x: t.Tensor, name: string): t.Tensor {
  const inFile = join(root, `${name}-in.safetensors`);
  const outFile = join(root, `${name}-out.safetensors`);
  t.saveSafetensors(inFile, { x });
  const run = spawnSync(PYTHON, [SCRIPT, modelFile, inFile, outFile], { encoding: 'utf8' });
  assert.equal(run.status, 0, `torchvision_load.py failed: ${run.stderr}`);
  return t.loadSafetensors(outFile).tensors.get('logits')!;
}

function maxAbsDiff(a: t.Tensor, b: t.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  return t.tidy(() => a.sub(b).abs().flatten(0, -1).amax(0).item());
}

test('simclr export --format safetensors-torchvision loads into torchvision.models.resnet18 with our logits within 1e-4', () => {
  const classes = ['a', 'b', 'c', 'd', 'e'];
  const { run, model, config } = makeRun(join(root, 'run18'), { encoder: { depth: 18, width: 1, cifarStem: false, inChannels: 3 }, imageSize: 48, classes });
  const file = join(root, 'resnet18.safetensors');
  const r = simclr(['export', '--model', run, '--format', 'safetensors-torchvision', '--out', file]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /torchvision\.models\.resnet18\(num_classes=5\)/);
  assert.match(r.stdout, /model\.fc = nn\.Sequential\(nn\.Linear\(512, 512\), nn\.ReLU\(\), nn\.Linear\(512, 5\)\)/);
  const meta = JSON.parse(spawnSync(PYTHON, ['-c', `import sys; sys.path.insert(0, ${JSON.stringify(join(__dirname, '..', '..', 'test', 'py'))}); import st, json; print(json.dumps(st.load(${JSON.stringify(file)})[1]))`], { encoding: 'utf8' }).stdout);
  assert.deepEqual(JSON.parse(meta.classes), classes);
  assert.equal(meta.arch, 'resnet18');
  const { x, logits } = inputsAndLogits(model, [4, 3, 48, 48], config.norm);
  const theirs = torchvisionLogits(file, x, 'r18');
  const diff = maxAbsDiff(theirs, logits);
  assert.ok(t.tidy(() => logits.abs().flatten(0, -1).amax(0).item()) > 0.1, 'logits of some size');
  assert.ok(diff < 1e-4, `max |logit difference| ${diff}`);
  t.tidy(() => assert.deepEqual(theirs.argmax(1).toArray(), logits.argmax(1).toArray()));
  for (const v of [x, logits, theirs]) v.dispose();
  model.dispose();
});

test('a CIFAR-stem grayscale ResNet-18 with the classifier on the encoder loads with the stem the metadata gives', () => {
  const model = randomClassifier({ encoder: { depth: 18, width: 1, cifarStem: true, inChannels: 1 }, classes: 3, fineTuneFrom: 0, seed: 5 });
  const norm = { mean: [0.3], std: [0.35] };
  const { tensors, metadata, python } = torchvisionState(model, { classes: ['x', 'y', 'z'], norm, imageSize: 28, channels: 1 });
  assert.match(python, /model\.conv1 = nn\.Conv2d\(1, 64, 3, 1, 1, bias=False\)/);
  assert.match(python, /model\.maxpool = nn\.Identity\(\)/);
  assert.doesNotMatch(python, /model\.fc =/);
  assert.ok(tensors.has('fc.weight') && tensors.has('layer4.1.bn2.running_var') && tensors.has('bn1.num_batches_tracked'));
  const file = join(root, 'cifar18.safetensors');
  t.saveSafetensors(file, tensors, metadata);
  for (const v of tensors.values()) v.dispose();
  const { x, logits } = inputsAndLogits(model, [3, 1, 28, 28], norm);
  const theirs = torchvisionLogits(file, x, 'cifar');
  const diff = maxAbsDiff(theirs, logits);
  assert.ok(diff < 1e-4, `max |logit difference| ${diff}`);
  for (const v of [x, logits, theirs]) v.dispose();
  model.dispose();
});

test('width-multiplied and SK models are refused for torchvision with the reason, and the CLI exits 2', () => {
  const info = { classes: ['a', 'b'], norm: { mean: [0.5], std: [0.5] }, imageSize: 32, channels: 1 };
  const wide = randomClassifier({ encoder: { depth: 18, width: 0.25, cifarStem: true, inChannels: 1 }, classes: 2 });
  assert.throws(() => torchvisionState(wide, info), (e: Error) => e instanceof PlanError && /width 0\.25/.test(e.message) && /--format onnx/.test(e.message));
  wide.dispose();
  const { run } = makeRun(join(root, 'sk'), { encoder: { depth: 18, width: 1, skRatio: 0.0625, cifarStem: true, inChannels: 1 }, imageSize: 28, classes: ['a', 'b'] });
  const r = simclr(['export', '--model', run, '--format', 'safetensors-torchvision', '--out', join(root, 'sk.safetensors')]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /selective kernels \(SK\)/);
  const missing = simclr(['export', '--model', join(root, 'nothing-here'), '--out', join(root, 'x.onnx')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /not a simclr run folder/);
  const noOut = simclr(['export', '--model', run]);
  assert.equal(noOut.status, 2);
  assert.match(noOut.stderr, /--out/);
  const badFormat = simclr(['export', '--model', run, '--format', 'tflite', '--out', 'x']);
  assert.equal(badFormat.status, 2);
  assert.match(badFormat.stderr, /--format must be onnx, safetensors-torchvision or web, got 'tflite'/);
});
