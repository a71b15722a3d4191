// simclr export --format onnx: the graph onnxruntime runs gives our logits (fp32) and the
// top-1 of `simclr eval`; batch norm is folded, the batch is dynamic, the class names are in
// the metadata; SK, ResNet-D, bottleneck, grayscale, the in-graph centre crop and float input
// are checked against our forward pass too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import * as t from '../src';
import { evalInput } from '../src/augment';
import { openDataset, range, squareFrames } from '../src/data';
import { classifierToOnnx, OPSET } from '../src/export';
import type { Classifier, ResNetOptions } from '../src/models';
import { loadClassifier } from '../src/run/folder';
import { RunFolder } from '../src/train';
import { tempDir } from './helpers';
import { cifarFolder, makeRun, randomClassifier } from './export-fixture';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const root = tempDir('simclr-export-onnx-');
process.env.SIMCLR_CACHE = join(root, 'cache');
const simclr = (args: string[]) => spawnSync(process.execPath, [MAIN, ...args, '--threads', '1'], { encoding: 'utf8', env: process.env });
t.useCompute({ precision: 'fp32', channelsLast: 'off' });

/** Our logits [n, k] for uint8 (or [0, 1] float) pixels, in float32. */
function ourLogits(model: Classifier, pixels: Uint8Array | Float32Array, shape: number[], norm: { mean: number[]; std: number[] }): Float32Array {
  return t.tidy(() =>
    t.noGrad(() => {
      model.eval();
      const x = pixels instanceof Uint8Array ? t.fromBytes(pixels, shape, 'uint8') : t.tensor(pixels, shape);
      return model.forward(evalInput(x, shape[2]!, norm)).data() as Float32Array;
    }),
  );
}

async function ortLogits(session: ort.InferenceSession, pixels: Uint8Array | Float32Array, shape: number[]): Promise<Float32Array> {
  const input = pixels instanceof Uint8Array ? new ort.Tensor('uint8', pixels, shape) : new ort.Tensor('float32', pixels, shape);
  const out = await session.run({ pixels: input });
  assert.deepEqual(out.logits!.dims, [shape[0], out.logits!.dims[1]]);
  return out.logits!.data as Float32Array;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

function top1(logits: Float32Array, k: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < logits.length / k; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (logits[i * k + j]! > logits[i * k + best]!) best = j;
    out.push(best);
  }
  return out;
}

test('simclr export --format onnx: onnxruntime gives our logits within 1e-3 and the top-1 of simclr eval on 300 test images', async () => {
  const classes = ['airplane', 'cat', 'ship', 'truck'];
  const testDir = cifarFolder(join(root, 'test'), classes, 75);
  const { run, stage, config } = makeRun(join(root, 'run'), { encoder: { depth: 18, width: 0.25, cifarStem: true, inChannels: 3 }, imageSize: 32, classes, testData: testDir });
  const file = join(root, 'model.onnx');
  const r = simclr(['export', '--model', run, '--format', 'onnx', '--out', file]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`${stage}`));

  // The file: opset, no batch norm left, the class names and input description in the metadata.
  const proto = onnx.ModelProto.decode(readFileSync(file));
  assert.ok(Number(proto.opsetImport![0]!.version) >= 17, 'opset 17 or later');
  const ops = new Set(proto.graph!.node!.map((n) => n.opType));
  assert.ok(!ops.has('BatchNormalization'), `batch norm left in the graph: ${[...ops].join(', ')}`);
  assert.ok(ops.has('Conv') && ops.has('Gemm'));
  const meta = Object.fromEntries(proto.metadataProps!.map((p) => [p.key, p.value]));
  assert.deepEqual(JSON.parse(meta.classes!), classes);
  assert.equal(meta.input_type, 'uint8');
  assert.equal(meta.stage, stage);
  const dims = proto.graph!.input![0]!.type!.tensorType!.shape!.dim!;
  assert.equal(dims[0]!.dimParam, 'batch');
  assert.deepEqual(dims.slice(1).map((d) => Number(d.dimValue)), [3, 32, 32]);

  // The run's test images, as eval reads them.
  const ds = await openDataset(testDir, { imageSize: 32, channels: 3, split: 'test' });
  assert.equal(ds.count, 300);
  const { model } = loadClassifier(new RunFolder(run), stage);
  const pixels = squareFrames(ds, range(0, ds.count));
  const ours = ourLogits(model, pixels, [ds.count, 3, 32, 32], config.norm);
  model.dispose();
  const session = await ort.InferenceSession.create(file);
  // Dynamic batch: 1 image, then the rest in batches of 100 and a remainder.
  const frame = 3 * 32 * 32;
  const theirs = new Float32Array(ours.length);
  const bounds = [0, 1, 101, 201, 300];
  for (let b = 0; b + 1 < bounds.length; b++) {
    const [lo, hi] = [bounds[b]!, bounds[b + 1]!];
    theirs.set(await ortLogits(session, pixels.subarray(lo * frame, hi * frame), [hi - lo, 3, 32, 32]), lo * classes.length);
  }
  const diff = maxAbsDiff(theirs, ours);
  assert.ok(diff < 1e-3, `max |logit difference| ${diff}`);
  const pOurs = top1(ours, classes.length);
  const pOnnx = top1(theirs, classes.length);
  assert.deepEqual(pOnnx, pOurs);

  // simclr eval's top-1 (fp32) is the ONNX model's accuracy on the same images.
  const ev = simclr(['eval', '--model', run, '--precision', 'fp32']);
  assert.equal(ev.status, 0, ev.stderr);
  const evalTop1 = Number(new RegExp(`${stage}: top-1 ([\\d.]+)%`).exec(ev.stdout)?.[1]);
  const onnxTop1 = (100 * pOnnx.filter((p, i) => p === ds.labels![i]).length) / ds.count;
  assert.equal(onnxTop1.toFixed(2), evalTop1.toFixed(2), ev.stdout);
  // Probabilities are the softmax of the logits.
  const out = await session.run({ pixels: new ort.Tensor('uint8', pixels.subarray(0, 2 * frame), [2, 3, 32, 32]) });
  const p = out.probabilities!.data as Float32Array;
  assert.ok(Math.abs(p.slice(0, 4).reduce((a, b) => a + b, 0) - 1) < 1e-5);
});

const variants: { name: string; encoder: ResNetOptions; size: number; input: 'uint8' | 'float'; fineTuneFrom: number }[] = [
  { name: 'SK ResNet-18, CIFAR stem, grayscale 28px', encoder: { depth: 18, width: 0.25, skRatio: 0.0625, cifarStem: true, inChannels: 1 }, size: 28, input: 'uint8', fineTuneFrom: 1 },
  { name: 'SK ResNet-50 with the ResNet-D stem, 40px (centre crop in the graph)', encoder: { depth: 50, width: 0.125, skRatio: 0.0625, cifarStem: false, inChannels: 3 }, size: 40, input: 'uint8', fineTuneFrom: 2 },
  { name: 'ResNet-34, 7x7 stem and max-pool, 48px grayscale, float input, classifier on the encoder', encoder: { depth: 34, width: 0.25, cifarStem: false, inChannels: 1 }, size: 48, input: 'float', fineTuneFrom: 0 },
];

for (const v of variants) {
  test(`ONNX export of ${v.name} gives our logits within 1e-3`, async () => {
    const model = randomClassifier({ encoder: v.encoder, classes: 5, fineTuneFrom: v.fineTuneFrom, seed: 3 });
    const c = v.encoder.inChannels!;
    const norm = { mean: [0.5, 0.4, 0.3].slice(0, c), std: [0.2, 0.3, 0.25].slice(0, c) };
    const bytes = classifierToOnnx(model, { imageSize: v.size, channels: c, norm, classes: ['a', 'b', 'c', 'd', 'e'], input: v.input });
    const proto = onnx.ModelProto.decode(bytes);
    assert.equal(Number(proto.opsetImport![0]!.version), OPSET);
    assert.ok(!proto.graph!.node!.some((n) => n.opType === 'BatchNormalization'));
    const shape = [6, c, v.size, v.size];
    const n = shape.reduce((a, b) => a * b, 1);
    const pixels = v.input === 'uint8' ? Uint8Array.from({ length: n }, (_, i) => (i * 37 + (i >> 5) * 11) % 256) : Float32Array.from({ length: n }, (_, i) => ((i * 37 + (i >> 5) * 11) % 256) / 255);
    const ours = ourLogits(model, pixels, shape, norm);
    const session = await ort.InferenceSession.create(bytes);
    const theirs = await ortLogits(session, pixels, shape);
    const diff = maxAbsDiff(theirs, ours);
    const scale = ours.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    assert.ok(scale > 0.1, 'logits of some size');
    assert.ok(diff < 1e-3, `max |logit difference| ${diff} (logits up to ${scale})`);
    assert.deepEqual(top1(theirs, 5), top1(ours, 5));
    model.dispose();
  });
}
