// Bad input from JavaScript gives an Error (libtorch's message) or a TypeError naming the
// argument; the process lives on and the next op works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../src';
import { native } from '../src/torch/native';

const anyNative = native as unknown as Record<string, (...args: unknown[]) => unknown>;

function expectError(fn: () => unknown, type: ErrorConstructor, pattern: RegExp): void {
  t.tidy(() => {
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof type, `expected ${type.name}, got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
      assert.match((err as Error).message, pattern);
      return true;
    });
  });
}

test('libtorch errors arrive as Errors carrying its message', () => {
  expectError(() => t.ones([2, 3]).matmul(t.ones([2, 3])), Error, /matmul: mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x3\)/);
  expectError(() => t.F.conv2d(t.ones([1, 3, 8, 8]), t.ones([4, 2, 3, 3])), Error, /conv2d: .*expected input\[1, 3, 8, 8\] to have 2 channels/);
  expectError(() => t.F.conv2d(t.ones([1, 3, 8, 8], { dtype: 'int64' }), t.ones([4, 3, 3, 3])), Error, /conv2d:/);
  expectError(() => t.F.crossEntropy(t.ones([4, 3]), t.tensor([0, 1, 2, 3], undefined, { dtype: 'int64' })), Error, /crossEntropy: .*out of bounds/);
  expectError(() => t.ones([3]).indexSelect(0, t.tensor([5], undefined, { dtype: 'int64' })), Error, /indexSelect: .*out of range/);
  expectError(() => t.ones([3]).item(), Error, /item: a Tensor with 3 elements cannot be converted to Scalar/);
  expectError(() => t.ones([2]).requiresGrad_().mul(2).backward(), Error, /backward: grad can be implicitly created only for scalar outputs/);
  expectError(() => t.ones([4]).view(3), Error, /view: shape '\[3\]' is invalid for input of size 4/);
  expectError(() => t.ones([2]).to('cuda'), Error, /toDevice: /);
});

test('allocations beyond memory give an Error, not a crash', () => {
  expectError(() => t.empty([1e15]), Error, /empty: .*(allocate|memory)/i);
  expectError(() => t.zeros([2 ** 40, 2 ** 30]), Error, /zeros: /);
});

test('wrong arguments from JavaScript are TypeErrors naming the argument', () => {
  expectError(() => anyNative.add!(1, t.ones([1]).h), TypeError, /add: argument 'a' must be a Tensor, got a number/);
  expectError(() => anyNative.add!(t.ones([1]).h, 'x'), TypeError, /add: argument 'b' must be a Tensor, got a string/);
  expectError(() => anyNative.zeros!('3'), TypeError, /zeros: argument 'shape' must be an array of integers/);
  expectError(() => anyNative.zeros!([2.5]), TypeError, /zeros: argument 'shape' must be an array of integers/);
  expectError(() => anyNative.zeros!([2], 'float128'), TypeError, /zeros: argument 'dtype' must be one of float32/);
  expectError(() => anyNative.zeros!([2], 'float32', 'tpu:x'), TypeError, /zeros: argument 'device' must be a device name/);
  expectError(() => anyNative.relu!(t.ones([1]).h, 1), TypeError, /relu: expected at most 1 argument/);
  expectError(() => anyNative.conv2d!(t.ones([1, 1, 3, 3]).h, t.ones([1, 1, 3, 3]).h, null, [1, 1], [0, 0], [1, 1], '1'), TypeError, /argument 'groups' must be an integer/);
  expectError(() => anyNative.cat!([t.ones([1]).h, {}], 0), TypeError, /cat: argument 'tensors' must be an array of Tensors/);
  expectError(() => anyNative.add!({}, t.ones([1]).h), TypeError, /argument 'a' must be a Tensor, got an object/);
  expectError(() => anyNative.setNumThreads!(0), TypeError, /setNumThreads: argument 'threads' must be a thread count/);
  expectError(() => anyNative.zeros!([-1]), Error, /zeros: /);
  expectError(() => anyNative.fromBytes!(new Float32Array(3), [2, 2], 'float32'), RangeError, /fromBytes: 12 bytes given, but shape and dtype float32 need 4 x 4/);
  expectError(() => anyNative.fromBytes!(new Float32Array(3), [2 ** 40, 2 ** 40], 'float32'), TypeError, /shape whose element count fits/);
  expectError(() => anyNative.gridSample!(t.ones([1, 1, 2, 2]).h, t.zeros([1, 1, 1, 2]).h, 'cubic'), TypeError, /argument 'mode' must be 'bilinear', 'nearest' or 'bicubic'/);
});

test('a disposed tensor gives a clear Error', () => {
  const a = t.ones([2]);
  const h = a.h;
  a.dispose();
  expectError(() => a.add(1), Error, /used after dispose/);
  expectError(() => anyNative.add!(h, t.ones([1]).h), Error, /add: argument 'a' is a tensor that was already disposed/);
});

test('a slot whose generations are spent is retired: a stale handle never names a live tensor', () => {
  const raw = native as unknown as { ageSlotForTest(h: number): number; dispose(h: number): boolean; isDisposed(h: number): boolean };
  const a = t.ones([2]);
  const first = a.h;
  // As if this slot had been reused 33 million times: its handle is the last generation but one.
  const aged = raw.ageSlotForTest(first);
  assert.equal(raw.isDisposed(first), true, 'the old handle died');
  raw.dispose(aged);
  // The next tensor takes the slot at its last generation; once that is released, the slot is retired.
  const b = t.ones([3]);
  assert.equal(b.h % 2 ** 28, aged % 2 ** 28, 'the freed slot is reused once more');
  const last = b.h;
  b.dispose();
  const fresh = Array.from({ length: 4 }, () => t.ones([1]));
  for (const f of fresh) assert.notEqual(f.h % 2 ** 28, last % 2 ** 28, 'the retired slot is not handed out again');
  for (const stale of [first, aged, last]) expectError(() => anyNative.add!(stale, fresh[0]!.h), Error, /already disposed/);
  for (const f of fresh) f.dispose();
});

test('the process lives on after every error', () => {
  const out = t.tidy(() => t.ones([2]).add(1).sum().item());
  assert.equal(out, 4);
});
