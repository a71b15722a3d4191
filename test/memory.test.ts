// Deterministic release: scopes, dispose(), `using`, and the GC safety net.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as t from '../src';

test('tidy frees everything made inside except what it returns', () => {
  const start = t.liveTensors();
  const kept = t.tidy(() => {
    const a = t.ones([10]);
    const b = a.add(1).mul(2);
    return { result: b.sum(), list: [a.mean()] };
  });
  assert.equal(t.liveTensors(), start + 2);
  assert.equal(kept.result.item(), 40);
  kept.result.dispose();
  kept.list[0]!.dispose();
  assert.equal(t.liveTensors(), start);
});

test('nested scopes hand returned tensors to the parent; keep() opts out', () => {
  const start = t.liveTensors();
  let escaped: t.Tensor | null = null;
  const outer = t.tidy(() => {
    const inner = t.tidy(() => t.ones([3]).add(1));
    escaped = t.keep(t.zeros([1]));
    assert.equal(inner.isDisposed, false);
    return inner.sum();
  });
  assert.equal(outer.item(), 6);
  assert.equal(escaped!.isDisposed, false);
  outer.dispose();
  escaped!.dispose();
  assert.equal(t.liveTensors(), start);
});

test('a tensor from outside a scope is not freed by it', () => {
  const x = t.ones([2]);
  const same = t.tidy(() => t.tidy(() => x));
  assert.equal(same, x);
  assert.equal(x.isDisposed, false);
  x.dispose();
});

test('an exception inside tidy still frees its tensors', () => {
  const start = t.liveTensors();
  assert.throws(() =>
    t.tidy(() => {
      t.ones([100]);
      t.ones([2, 2]).matmul(t.ones([3, 3]));
    }),
  );
  assert.equal(t.liveTensors(), start);
});

test('using frees at the end of the block', () => {
  const start = t.liveTensors();
  let seen: t.Tensor | null = null;
  {
    using a = t.ones([5]);
    seen = a;
    assert.equal(t.liveTensors(), start + 1);
  }
  assert.equal(seen.isDisposed, true);
  assert.equal(t.liveTensors(), start);
});

test('a training-style loop returns the live tensor count to its start', () => {
  t.manualSeed(0);
  const model = t.resnet({ depth: 18, width: 0.25, numClasses: 10, imageSize: 16, inChannels: 1 });
  const opt = new t.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  t.tidy(() => {
    // First step creates the optimiser's momentum buffers.
    model.forward(t.randn([4, 1, 16, 16])).sum().backward();
    opt.step();
  });
  const start = t.liveTensors();
  for (let i = 0; i < 20; i++) {
    t.tidy(() => {
      const loss = t.F.crossEntropy(model.forward(t.randn([4, 1, 16, 16])), t.randint(0, 10, [4]));
      opt.zeroGrad();
      loss.backward();
      opt.step();
    });
  }
  assert.equal(t.liveTensors(), start);
  opt.dispose();
  model.dispose();
});

test('the garbage collector frees forgotten tensors (safety net) and sees their memory', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const before = t.liveTensors();
  const bytes = t.liveBytes();
  (() => {
    for (let i = 0; i < 50; i++) t.zeros([1000]);
  })();
  assert.equal(t.liveTensors(), before + 50);
  assert.equal(t.liveBytes(), bytes + 50 * 4000);
  for (let i = 0; i < 5 && t.liveTensors() > before; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(t.liveTensors() <= before, `live tensors ${t.liveTensors()} > ${before} after GC`);
});
