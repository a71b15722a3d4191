// The evaluation forward (batch norm folded into the convolutions, nn/fold.ts) gives the
// unfolded model's eval-mode outputs: to float32 rounding in float32, and within bfloat16
// rounding in bfloat16; the model's own weights and mode are untouched afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../src';
import { batchNormPairs, forwardIn, holdForInference, inference, isFolded, BatchNorm } from '../src/nn';
import type { Classifier, ResNetOptions } from '../src/models';
import { randomClassifier } from './export-fixture';

const CASES: [string, ResNetOptions, number][] = [
  ['ResNet-18, CIFAR stem', { depth: 18, cifarStem: true, width: 0.25 }, 16],
  ['ResNet-50, SK, ResNet-D stem', { depth: 50, skRatio: 0.0625, width: 0.25 }, 40],
  ['ResNet-50, grayscale', { depth: 50, width: 0.25, inChannels: 1 }, 40],
];

/** The eval-mode outputs of the model as it is, with nothing folded (float32). */
function unfolded(model: Classifier, x: t.Tensor): Float32Array {
  model.eval();
  return t.noGrad(() => t.tidy(() => model.forward(x).data() as Float32Array));
}

function folded(model: Classifier, x: t.Tensor): Float32Array {
  return inference(model, (forward) => t.tidy(() => forward(x).to('float32').data() as Float32Array));
}

/** Largest |a - b| over the largest |b|: the error against the outputs' scale. */
function relativeError(a: Float32Array, b: Float32Array): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return err / scale;
}

for (const [name, encoder, size] of CASES) {
  test(`folded inference equals the eval-mode model: ${name}`, () => {
    const model = randomClassifier({ encoder, classes: 7, fineTuneFrom: 2, seed: 3 });
    const pairs = batchNormPairs(model);
    const norms = model.namedModules().filter(([, m]) => m instanceof BatchNorm).length;
    assert.equal(pairs.length, norms, 'every batch norm of a ResNet and its head folds');
    const x = t.keep(t.randn([3, encoder.inChannels ?? 3, size, size]));
    try {
      t.useCompute({ precision: 'fp32', channelsLast: 'off' });
      const reference = unfolded(model, x);
      assert.ok(relativeError(folded(model, x), reference) < 1e-4, 'float32: folded = unfolded');
      t.useCompute({ precision: 'bf16', channelsLast: 'on' });
      const bf16 = relativeError(folded(model, x), reference);
      assert.ok(bf16 < 0.05, `bfloat16 within its rounding (${bf16})`);
      assert.ok(bf16 > 1e-5, 'bfloat16 really ran in bfloat16');
      // Nothing stays folded, and the model's own forward is what it was.
      assert.equal(isFolded(model), false);
      t.useCompute({ precision: 'fp32', channelsLast: 'off' });
      assert.ok(relativeError(unfolded(model, x), reference) < 1e-6);
    } finally {
      x.dispose();
      model.dispose();
    }
  });
}

test('a held model stays folded across calls and gives training mode back when released', () => {
  t.useCompute({ precision: 'fp32', channelsLast: 'off' });
  const model = randomClassifier({ encoder: { depth: 18, cifarStem: true, width: 0.25 }, classes: 3, seed: 1 });
  const x = t.keep(t.randn([2, 3, 16, 16]));
  try {
    model.train();
    const release = holdForInference(model);
    assert.equal(isFolded(model), true);
    assert.equal(model.training, false);
    const a = t.noGrad(() => t.tidy(() => forwardIn(model, x).data() as Float32Array));
    const b = folded(model, x); // nested: shares the held fold
    assert.equal(isFolded(model), true);
    assert.deepEqual(a, b);
    release();
    assert.equal(isFolded(model), false);
    assert.equal(model.training, true);
  } finally {
    x.dispose();
    model.dispose();
  }
});
