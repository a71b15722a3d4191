// Every op of the native addon, called with hostile arguments (wrong types, NaN, 2^63,
// huge and negative sizes, stale handles, arrays whose getters grow, shrink, dispose or
// detach, Proxies, sparse arrays), either returns or throws a JS Error: never a crash.
// The calls run in child processes (bench/fuzz.ts) so a crash fails the test with the
// call that caused it instead of killing the runner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../src';
import { native } from '../src/torch/native';
import { describeCrash, runFuzz } from '../bench/fuzz';

const anyNative = native as unknown as Record<string, (...args: unknown[]) => unknown>;

test('fuzz: every addon op returns or throws on hostile arguments (seeded, in child processes)', { timeout: 180_000 }, async () => {
  const seed = Number(process.env.FUZZ_SEED ?? 20240601);
  const r = await runFuzz({ seed, children: 4, callsPerChild: 5_000, parallel: 2, timeoutMs: 120_000 });
  assert.deepEqual(r.crashes.map(describeCrash), [], `crashes (rerun with FUZZ_SEED=${seed})`);
  assert.equal(r.calls, 20_000);
  assert.ok(r.ops >= 100, `only ${r.ops} ops found in the addon`);
  // The fuzzer learns what each parameter wants; most calls must get past the type checks.
  assert.ok(r.learnt >= r.params * 0.9, `learnt ${r.learnt} of ${r.params} parameter kinds`);
  assert.ok(r.returned > r.calls * 0.1, `only ${r.returned} of ${r.calls} calls returned`);
  assert.ok(r.reached >= r.params * 0.97, `calls got to ${r.reached} of ${r.params} parameters; never: ${r.notReached.join(', ')}`);
  // The collective ops got past their argument checks with the child's real file store and
  // Gloo group of one (and the work items and reducers made on it), not only up to an id.
  assert.ok(r.collectiveOps.length >= 20, `only ${r.collectiveOps.length} collective ops found`);
  for (const op of ['distAllReduce', 'distAllGather', 'distBroadcast', 'distBarrier', 'distWait', 'distSyncBatchNorm', 'distSumWithGrad', 'distSumNow', 'distReducerFinish', 'distStoreGet', 'distGroupNew']) {
    assert.ok(r.collectiveOps.includes(op), `${op} is not among the collective ops`);
  }
  assert.deepEqual(r.collectiveOps.filter((op) => !r.collectiveRun.includes(op)), [], 'collective ops that never ran with an open store, group, work item or reducer');
});

test('fuzz: a child whose log stands still is killed and reported as a hang', { timeout: 30_000 }, async () => {
  // 1 ms of stillness: the child is still loading the addon when the watchdog looks.
  const r = await runFuzz({ seed: 1, children: 1, callsPerChild: 10, stallMs: 1 });
  assert.deepEqual(r.crashes.map((c) => c.kind), ['hang']);
  assert.equal(r.calls, 0);
});

function expectTypeError(fn: () => unknown, pattern: RegExp): void {
  t.tidy(() => {
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof TypeError, `expected a TypeError, got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
      assert.match((err as Error).message, pattern);
      return true;
    });
  });
}

test('an array that grows while the addon reads it is a TypeError, not heap corruption', () => {
  const s = [1];
  Object.defineProperty(s, 0, {
    get() {
      s.push(...Array(100000).fill(1));
      return 1;
    },
  });
  expectTypeError(() => t.ones([1]).reshape(s), /reshape: argument 'shape' must be an array of integers, got an array whose length changed from 1 to 100001/);
  assert.equal(t.tidy(() => t.ones([2]).add(1).sum().item()), 4);
});

test('a getter that disposes a tensor argument gives an Error, and the tensor is not used', () => {
  t.tidy(() => {
    const x = t.ones([2, 2]);
    const shape = [4];
    Object.defineProperty(shape, 0, {
      get() {
        native.dispose(x.h);
        return 4;
      },
    });
    assert.throws(() => anyNative.reshape!(x.h, shape), /reshape: argument 'tensor' is a tensor that was already disposed/);
  });
});

test('a getter that grows the tensor table does not move a tensor argument under the addon', () => {
  t.tidy(() => {
    const a = t.ones([3]);
    const b = t.ones([3]);
    const made: number[] = [];
    const list = [a.h, b.h];
    Object.defineProperty(list, 1, {
      get() {
        for (let i = 0; i < 5000; i++) made.push(native.ones([1]));
        return b.h;
      },
    });
    const out = anyNative.cat!(list, 0) as number;
    assert.deepEqual(native.shape(out as never), [6]);
    native.dispose(out as never);
    for (const h of made) native.dispose(h as never);
  });
});

test('fromBytes copies the bytes before a later argument can detach them', () => {
  const data = new Float32Array([1, 2, 3, 4]);
  const shape = [4];
  Object.defineProperty(shape, 0, {
    get() {
      structuredClone(data.buffer, { transfer: [data.buffer] });
      return 4;
    },
  });
  const h = anyNative.fromBytes!(data, shape, 'float32') as never;
  assert.deepEqual([...new Float32Array(native.toBytes(h).buffer.slice(0))].slice(0, 4), [1, 2, 3, 4]);
  native.dispose(h);
  // A buffer detached before the call is refused.
  expectTypeError(() => anyNative.fromBytes!(data, [4], 'float32'), /fromBytes: argument 'bytes' is a detached buffer/);
});

test('numbers out of the int64 range are TypeErrors before any cast', () => {
  for (const bad of [NaN, Infinity, -Infinity, 1e300, -1e300, 2 ** 63, 2 ** 53 + 2, 0.5]) {
    expectTypeError(() => anyNative.zeros!([bad]), /zeros: argument 'shape' must be an array of integers/);
    expectTypeError(() => anyNative.eye!(bad), /eye: argument 'n' must be an integer/);
    expectTypeError(() => anyNative.linspace!(0, 1, bad), /linspace: argument 'steps' must be an integer/);
  }
  // Scalars for integer tensors: NaN and 1e300 stay doubles (libtorch then refuses or promotes).
  t.tidy(() => {
    const i = t.ones([2], { dtype: 'int64' });
    assert.doesNotThrow(() => anyNative.addScalar!(i.h, 1e300));
    assert.doesNotThrow(() => anyNative.mulScalar!(i.h, NaN));
    assert.throws(() => anyNative.addScalar_!(i.h, NaN), Error);
  });
});

test('setRngState accepts only a state as getRngState makes it', () => {
  t.tidy(() => {
    const state = native.getRngState();
    const size = native.numel(state);
    assert.throws(() => native.setRngState(native.expand(native.zeros([1], 'uint8'), [size])), /setRngState: the state must be a contiguous 1-d tensor/);
    assert.throws(() => native.setRngState(native.zeros([size + 1], 'uint8')), /setRngState: the state must have exactly \d+ bytes/);
    assert.throws(() => native.setRngState(native.zeros([size])), TypeError);
    assert.throws(() => native.setRngState(native.zeros([size], 'uint8', 'meta')), TypeError);
    const first = t.rand([3]).toArray();
    native.setRngState(state);
    assert.deepEqual(t.rand([3]).toArray(), first);
    for (const h of [state]) native.dispose(h);
  });
});

test('setGrad checks shape, dtype and device as PyTorch does', () => {
  t.tidy(() => {
    const x = t.ones([2]).requiresGrad_();
    assert.throws(() => native.setGrad(x.h, t.ones([3]).h), /setGrad: the gradient has shape \[3\] but the tensor has shape \[2\]/);
    assert.throws(() => native.setGrad(x.h, t.ones([2], { dtype: 'float64' }).h), TypeError);
    assert.throws(() => native.setGrad(x.h, native.zeros([2], 'float32', 'meta')), /setGrad: the gradient is on meta but the tensor is on cpu/);
    assert.throws(() => native.setGrad(x.h, x.h), /own gradient/);
    native.setGrad(x.h, t.full([2], 3).h);
    assert.deepEqual(x.grad!.toArray(), [3, 3]);
  });
});

test('gridSample refuses a NaN or infinite grid when autograd records (libtorch 1.13 backward crashes on it)', () => {
  t.tidy(() => {
    const x = t.rand([1, 1, 4, 4]).requiresGrad_();
    const grid = t.tensor([NaN, 0, Infinity, 0.5], [1, 1, 2, 2]);
    assert.throws(() => t.F.gridSample(x, grid, { paddingMode: 'border' }), /gridSample: the grid has NaN or infinite values/);
    // Without autograd the forward pass is left as libtorch does it.
    t.noGrad(() => t.F.gridSample(x, grid, { paddingMode: 'reflection' }));
  });
});
