// Forward values of every op in the addon's table on small known inputs. The last test
// fails when an op is added to the table without a case here.
import { test } from 'node:test';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import * as t from '../src';
import { native } from '../src/torch/native';
import { wrap } from '../src/torch/tensor';
import { assertValues } from './helpers';

const { tensor, F } = t;
const covered = new Set<string>();
function op(names: string | string[], fn: () => void): void {
  const list = Array.isArray(names) ? names : [names];
  for (const n of list) covered.add(n);
  test(`op ${list.join(', ')}`, () => t.tidy(fn));
}

const m23 = () => tensor([[1, 2, 3], [4, 5, 6]]);

op(['fromBytes', 'toBytes', 'shape', 'dtype', 'device', 'numel'], () => {
  const a = tensor(new Float64Array([1.5, -2, 3]), [3, 1]);
  assert.deepEqual(a.shape, [3, 1]);
  assert.equal(a.dtype, 'float64');
  assert.equal(a.device, 'cpu');
  assert.equal(a.numel, 3);
  assert.deepEqual(a.toArray(), [1.5, -2, 3]);
  const b = tensor([7, 8], undefined, { dtype: 'int64' });
  assert.deepEqual(Array.from(b.data() as BigInt64Array), [7n, 8n]);
  assert.deepEqual([...b.bytes()].slice(0, 8), [7, 0, 0, 0, 0, 0, 0, 0]);
  const u = tensor(new Uint8Array([0, 255]));
  assert.equal(u.dtype, 'uint8');
  assert.deepEqual(u.toArray(), [0, 255]);
});
op(['strides', 'isContiguous', 'contiguous', 'clone'], () => {
  const x = t.zeros([2, 3, 4, 5]);
  assert.deepEqual(x.strides(), [60, 20, 5, 1]);
  const cl = x.channelsLast();
  assert.deepEqual(cl.strides(), [60, 1, 15, 3]);
  assert.ok(cl.isContiguous('channels_last'));
  assert.ok(!cl.isContiguous());
  assert.ok(cl.contiguous().isContiguous());
  assert.ok(cl.clone('preserve').isContiguous('channels_last'));
});
op('item', () => assert.equal(tensor([[4.5]]).item(), 4.5));
op('dispose', () => {
  const a = t.ones([2]);
  a.dispose();
  assert.ok(a.isDisposed);
});
op('isDisposed', () => {
  const a = t.ones([2]);
  assert.equal(native.isDisposed(a.h), false);
  const h = a.h;
  a.dispose();
  assert.equal(native.isDisposed(h), true);
});
op('ageSlotForTest', () => {
  const a = t.ones([2]);
  const h = a.h;
  const aged = native.ageSlotForTest(h);
  assert.equal(native.isDisposed(h), true, 'the old handle dies');
  assert.equal(native.isDisposed(aged), false, 'the new one names the same tensor');
  native.dispose(aged);
});
op(['liveTensors', 'liveBytes'], () => {
  const before = t.liveTensors();
  const bytes = t.liveBytes();
  const a = t.zeros([1000]);
  assert.equal(t.liveTensors(), before + 1);
  assert.equal(t.liveBytes(), bytes + 4000);
  a.dispose();
  assert.equal(t.liveTensors(), before);
});
op(['zeros', 'ones', 'empty', 'full', 'eye'], () => {
  assertValues(t.zeros([2]), [0, 0]);
  assertValues(t.ones([2], { dtype: 'float64' }), [1, 1]);
  assert.deepEqual(t.empty([3, 2]).shape, [3, 2]);
  assertValues(t.full([2], 2.5), [2.5, 2.5]);
  assertValues(t.eye(2), [1, 0, 0, 1]);
});
op(['arange', 'linspace'], () => {
  assertValues(t.arange(0, 5, 2), [0, 2, 4]);
  assert.equal(t.arange(0, 3).dtype, 'int64');
  assertValues(t.linspace(0, 1, 5), [0, 0.25, 0.5, 0.75, 1]);
});
op(['zerosLike', 'onesLike', 'fullLike'], () => {
  const a = m23();
  assertValues(t.zerosLike(a), [0, 0, 0, 0, 0, 0]);
  assertValues(t.onesLike(a), [1, 1, 1, 1, 1, 1]);
  assertValues(t.fullLike(a, -1), [-1, -1, -1, -1, -1, -1]);
});
op(['manualSeed', 'rand', 'randn'], () => {
  t.manualSeed(7);
  const a = t.rand([1000]);
  const b = t.randn([1000]);
  t.manualSeed(7);
  assert.deepEqual(t.rand([1000]).toArray(), a.toArray());
  assert.deepEqual(t.randn([1000]).toArray(), b.toArray());
  const v = a.toArray();
  assert.ok(v.every((x) => x >= 0 && x < 1));
  assert.ok(Math.abs(b.mean().item()) < 0.15);
  assert.ok(Math.abs(b.var(0).item() - 1) < 0.15);
});
op(['randint', 'randperm'], () => {
  const r = t.randint(3, 6, [500]).toArray();
  assert.ok(r.every((x) => x >= 3 && x < 6 && Number.isInteger(x)));
  assert.deepEqual(new Set(r), new Set([3, 4, 5]));
  const p = t.randperm(10).toArray();
  assert.deepEqual([...p].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});
op(['bernoulli', 'bernoulliP'], () => {
  const ones = t.bernoulli(t.ones([50])).toArray();
  assert.ok(ones.every((x) => x === 1));
  const zeros = t.bernoulli(t.zeros([50])).toArray();
  assert.ok(zeros.every((x) => x === 0));
  const half = t.bernoulliLike(t.zeros([4000]), 0.25).mean().item();
  assert.ok(Math.abs(half - 0.25) < 0.03, `rate ${half}`);
});
op(['normal_', 'uniform_'], () => {
  const n = t.empty([4000]).normal_(2, 0.5);
  assert.ok(Math.abs(n.mean().item() - 2) < 0.05);
  const u = t.empty([4000]).uniform_(-3, -1).toArray();
  assert.ok(u.every((x) => x >= -3 && x <= -1));
});
op(['getRngState', 'setRngState'], () => {
  const state = t.getRngState();
  const a = t.rand([5]).toArray();
  t.setRngState(state);
  assert.deepEqual(t.rand([5]).toArray(), a);
});
op(['toDtype', 'toDevice'], () => {
  const a = tensor([1.7, -2.2]);
  assert.deepEqual(a.to('int64').toArray(), [1, -2]);
  assert.equal(a.to('bfloat16').dtype, 'bfloat16');
  assertValues(a.to('bfloat16').float(), [1.703125, -2.203125]);
  assert.equal(a.to('cpu').device, 'cpu');
});
op('detach', () => {
  const a = tensor([1, 2], undefined, { requiresGrad: true });
  const d = a.detach();
  assert.equal(d.requiresGrad, false);
  assertValues(d, [1, 2]);
});
op(['reshape', 'view', 'flatten', 'squeeze', 'unsqueeze'], () => {
  const a = m23();
  assert.deepEqual(a.reshape(3, 2).shape, [3, 2]);
  assert.deepEqual(a.view([6]).shape, [6]);
  assert.deepEqual(a.unsqueeze(0).shape, [1, 2, 3]);
  assert.deepEqual(a.unsqueeze(0).squeeze(0).shape, [2, 3]);
  assert.deepEqual(t.zeros([2, 3, 4]).flatten(1).shape, [2, 12]);
});
op(['permute', 'transpose'], () => {
  assertValues(m23().transpose(0, 1), [1, 4, 2, 5, 3, 6]);
  assert.deepEqual(t.zeros([2, 3, 4]).permute(2, 0, 1).shape, [4, 2, 3]);
});
op(['expand', 'repeat'], () => {
  assertValues(tensor([[1], [2]]).expand(2, 3), [1, 1, 1, 2, 2, 2]);
  assertValues(tensor([1, 2]).repeat(2), [1, 2, 1, 2]);
});
op(['narrow', 'slice', 'select'], () => {
  const a = m23();
  assertValues(a.narrow(1, 1, 2), [2, 3, 5, 6]);
  assertValues(a.slice(1, 0, 3, 2), [1, 3, 4, 6]);
  assertValues(a.select(0, 1), [4, 5, 6]);
});
op('scatterAdd', () => {
  const idx = tensor([[0, 0, 2]], undefined, { dtype: 'int64' });
  assertValues(t.zeros([1, 3]).scatterAdd(1, idx, tensor([[1, 2, 3]])), [3, 0, 3]);
});
op(['indexSelect', 'gather', 'scatter'], () => {
  const a = m23();
  assertValues(a.indexSelect(1, tensor([2, 0], undefined, { dtype: 'int64' })), [3, 1, 6, 4]);
  assertValues(a.gather(1, tensor([[0], [2]], undefined, { dtype: 'int64' })), [1, 6]);
  assertValues(t.zeros([2, 3]).scatter(1, tensor([[1], [0]], undefined, { dtype: 'int64' }), tensor([[9], [8]])), [0, 9, 0, 8, 0, 0]);
});
op(['maskedSelect', 'maskedFill'], () => {
  const a = m23();
  const mask = a.gt(3);
  assertValues(a.maskedSelect(mask), [4, 5, 6]);
  assertValues(a.maskedFill(mask, 0), [1, 2, 3, 0, 0, 0]);
});
op(['cat', 'stack'], () => {
  assertValues(t.cat([tensor([1]), tensor([2, 3])]), [1, 2, 3]);
  assert.deepEqual(t.stack([tensor([1, 2]), tensor([3, 4])], 1).shape, [2, 2]);
  assertValues(t.stack([tensor([1, 2]), tensor([3, 4])], 1), [1, 3, 2, 4]);
});
op(['chunk', 'split'], () => {
  const parts = tensor([1, 2, 3, 4, 5]).chunk(2);
  assert.equal(parts.length, 2);
  assertValues(parts[1]!, [4, 5]);
  const s = tensor([1, 2, 3, 4, 5]).split(2);
  assert.deepEqual(s.map((p) => p.numel), [2, 2, 1]);
});
op(['flip', 'roll'], () => {
  assertValues(m23().flip(1), [3, 2, 1, 6, 5, 4]);
  assertValues(tensor([1, 2, 3]).roll([1], [0]), [3, 1, 2]);
});
op(['diagonal', 'tril'], () => {
  assertValues(tensor([[1, 2], [3, 4]]).diagonal(), [1, 4]);
  assertValues(tensor([[1, 2], [3, 4]]).tril(), [1, 0, 3, 4]);
});
op('oneHot', () => {
  assertValues(tensor([2, 0], undefined, { dtype: 'int64' }).oneHot(3), [0, 0, 1, 1, 0, 0]);
});
op(['add', 'sub', 'mul', 'div', 'addScalar', 'mulScalar', 'divScalar', 'rsubScalar'], () => {
  const a = tensor([1, 2, 3]);
  const b = tensor([[10], [20]]);
  assertValues(a.add(b), [11, 12, 13, 21, 22, 23]);
  assertValues(a.add(b, 2), [21, 22, 23, 41, 42, 43]);
  assertValues(a.sub(tensor([1, 1, 1])), [0, 1, 2]);
  assertValues(a.mul(a), [1, 4, 9]);
  assertValues(a.div(tensor([2, 4, 6])), [0.5, 0.5, 0.5]);
  assertValues(a.add(1), [2, 3, 4]);
  assertValues(a.sub(1), [0, 1, 2]);
  assertValues(a.mul(-2), [-2, -4, -6]);
  assertValues(a.div(2), [0.5, 1, 1.5]);
  assertValues(a.rsub(1), [0, -1, -2]);
  const i = tensor([1, 2], undefined, { dtype: 'int64' }).add(3);
  assert.equal(i.dtype, 'int64');
});
op(['pow', 'powTensor', 'neg', 'exp', 'log', 'sqrt', 'rsqrt', 'abs', 'tanh', 'sin', 'cos'], () => {
  const a = tensor([1, 4]);
  assertValues(a.pow(2), [1, 16]);
  assertValues(a.pow(tensor([3, 0.5])), [1, 2]);
  assertValues(a.neg(), [-1, -4]);
  assertValues(tensor([0, 1]).exp(), [1, Math.E]);
  assertValues(tensor([1, Math.E]).log(), [0, 1]);
  assertValues(a.sqrt(), [1, 2]);
  assertValues(a.rsqrt(), [1, 0.5]);
  assertValues(tensor([-3, 2]).abs(), [3, 2]);
  assertValues(tensor([0]).tanh(), [0]);
  assertValues(tensor([0, Math.PI / 2]).sin(), [0, 1]);
  assertValues(tensor([0]).cos(), [1]);
});
op(['floor', 'round', 'remainder'], () => {
  assertValues(tensor([1.7, -1.2]).floor(), [1, -2]);
  assertValues(tensor([1.4, 2.6]).round(), [1, 3]);
  assertValues(tensor([5, -1]).remainder(3), [2, 2]);
});
op(['maximum', 'minimum', 'clamp', 'clampTensor', 'where', 'lerp'], () => {
  const a = tensor([1, 5, 3]);
  const b = tensor([2, 2, 2]);
  assertValues(a.maximum(b), [2, 5, 3]);
  assertValues(a.minimum(b), [1, 2, 2]);
  assertValues(a.clamp(2, 4), [2, 4, 3]);
  assertValues(a.clamp(null, 2), [1, 2, 2]);
  assertValues(a.clamp(b, null), [2, 5, 3]);
  assertValues(t.where(a.gt(2), a, b), [2, 5, 3]);
  assertValues(tensor([0, 10]).lerp(tensor([10, 20]), tensor([0.5, 0.1])), [5, 11]);
});
op(['compare', 'compareScalar', 'logicalNot', 'logicalAnd'], () => {
  const a = tensor([1, 2, 3]);
  const b = tensor([3, 2, 1]);
  assertValues(a.eq(b), [0, 1, 0]);
  assertValues(a.ne(b), [1, 0, 1]);
  assertValues(a.lt(b), [1, 0, 0]);
  assertValues(a.le(b), [1, 1, 0]);
  assertValues(a.gt(2), [0, 0, 1]);
  assertValues(a.ge(2), [0, 1, 1]);
  assert.equal(a.gt(2).dtype, 'bool');
  assertValues(a.gt(1).logicalNot(), [1, 0, 0]);
  assertValues(a.gt(1).logicalAnd(a.lt(3)), [0, 1, 0]);
});
op(['sumAll', 'sum', 'meanAll', 'mean', 'var', 'norm'], () => {
  const a = m23();
  assertValues(a.sum(), [21]);
  assertValues(a.sum(1), [6, 15]);
  assert.deepEqual(a.sum(1, true).shape, [2, 1]);
  assertValues(a.mean(), [3.5]);
  assertValues(a.mean(0), [2.5, 3.5, 4.5]);
  assertValues(a.var(1), [1, 1]);
  assertValues(a.var(1, { unbiased: false }), [2 / 3, 2 / 3]);
  assertValues(tensor([[3, 4]]).norm(2, 1), [5]);
  assertValues(tensor([3, -4]).norm(1), [7]);
});
op(['amax', 'amin', 'maxDim', 'argmax', 'logsumexp'], () => {
  const a = tensor([[1, 9, 3], [7, 2, 8]]);
  assertValues(a.amax(1), [9, 8]);
  assertValues(a.amin(0), [1, 2, 3]);
  const { values, indices } = a.maxDim(1);
  assertValues(values, [9, 8]);
  assertValues(indices, [1, 2]);
  assertValues(a.argmax(0), [1, 0, 1]);
  assertValues(tensor([[0, 0]]).logsumexp(1), [Math.log(2)]);
});
op(['topk', 'sort'], () => {
  const a = tensor([3, 1, 4, 1, 5]);
  const k = a.topk(2);
  assertValues(k.values, [5, 4]);
  assertValues(k.indices, [4, 2]);
  assertValues(a.sort().values, [1, 1, 3, 4, 5]);
  assertValues(a.sort(0, true).values, [5, 4, 3, 1, 1]);
});
op(['matmul', 'linear'], () => {
  const a = tensor([[1, 2], [3, 4]]);
  assertValues(a.matmul(tensor([[1], [1]])), [3, 7]);
  assertValues(F.linear(a, tensor([[1, 0], [1, 1]]), tensor([10, 20])), [11, 23, 13, 27]);
});
op('conv2d', () => {
  const x = t.arange(0, 16, 1, { dtype: 'float32' }).reshape(1, 1, 4, 4);
  const w = t.ones([1, 1, 2, 2]);
  assertValues(F.conv2d(x, w, null, { stride: 2 }), [10, 18, 42, 50]);
  assertValues(F.conv2d(x, w, tensor([1]), { padding: 1, stride: 3 }), [1, 6, 21, 51]);
  const g = F.conv2d(t.ones([1, 2, 3, 3]), t.ones([2, 1, 3, 3]), null, { groups: 2 });
  assertValues(g, [9, 9]);
});
op('batchNorm', () => {
  const x = tensor([[1, 10], [3, 30]]);
  const rm = t.zeros([2]);
  const rv = t.ones([2]);
  const y = F.batchNorm(x, { runningMean: rm, runningVar: rv, training: true, momentum: 0.5, eps: 0 });
  assertValues(y, [-1, -1, 1, 1], 1e-5);
  assertValues(rm, [1, 10]);
  assertValues(rv, [0.5 + 0.5 * 2, 0.5 + 0.5 * 200]);
  const e = F.batchNorm(tensor([[2, 20]]), { runningMean: tensor([1, 10]), runningVar: tensor([4, 25]), weight: tensor([2, 1]), bias: tensor([0, 1]), eps: 0 });
  assertValues(e, [1, 3]);
});
op(['maxPool2d', 'avgPool2d', 'adaptiveAvgPool2d'], () => {
  const x = t.arange(0, 16, 1, { dtype: 'float32' }).reshape(1, 1, 4, 4);
  assertValues(F.maxPool2d(x, 2), [5, 7, 13, 15]);
  assertValues(F.avgPool2d(x, 2), [2.5, 4.5, 10.5, 12.5]);
  assertValues(F.adaptiveAvgPool2d(x, 1), [7.5]);
  assertValues(F.maxPool2d(x, 3, { stride: 2, padding: 1 }), [5, 7, 13, 15]);
});
op(['relu', 'relu_', 'sigmoid', 'softmax', 'logSoftmax'], () => {
  const a = tensor([-1, 0, 2]);
  assertValues(a.relu(), [0, 0, 2]);
  assertValues(tensor([0]).sigmoid(), [0.5]);
  assertValues(tensor([[0, Math.log(3)]]).softmax(1), [0.25, 0.75]);
  assertValues(tensor([[0, Math.log(3)]]).logSoftmax(1), [Math.log(0.25), Math.log(0.75)]);
  a.relu_();
  assertValues(a, [0, 0, 2]);
});
op(['crossEntropy', 'nllLoss'], () => {
  const logits = tensor([[0, Math.log(3)], [Math.log(4), 0]]);
  const target = tensor([1, 0], undefined, { dtype: 'int64' });
  assertValues(F.crossEntropy(logits, target), [-(Math.log(0.75) + Math.log(0.8)) / 2]);
  assertValues(F.crossEntropy(logits, target, { reduction: 'none' }), [-Math.log(0.75), -Math.log(0.8)]);
  assertValues(F.nllLoss(logits.logSoftmax(1), target, { reduction: 'sum' }), [-(Math.log(0.75) + Math.log(0.8))]);
  // label smoothing 0.2 over 2 classes: target weights 0.9 / 0.1
  const smooth = -(0.9 * Math.log(0.75) + 0.1 * Math.log(0.25) + 0.9 * Math.log(0.8) + 0.1 * Math.log(0.2)) / 2;
  assertValues(F.crossEntropy(logits, target, { labelSmoothing: 0.2 }), [smooth]);
});
op(['affineGrid', 'gridSample'], () => {
  const x = t.arange(0, 4, 1, { dtype: 'float32' }).reshape(1, 1, 2, 2);
  const identity = tensor([[[1, 0, 0], [0, 1, 0]]]);
  const grid = F.affineGrid(identity, [1, 1, 2, 2], false);
  assertValues(grid, [-0.5, -0.5, 0.5, -0.5, -0.5, 0.5, 0.5, 0.5]);
  assertValues(F.gridSample(x, grid), [0, 1, 2, 3]);
  const flipped = F.affineGrid(tensor([[[-1, 0, 0], [0, 1, 0]]]), [1, 1, 2, 2], false);
  assertValues(F.gridSample(x, flipped, { mode: 'nearest' }), [1, 0, 3, 2]);
});
op('interpolate', () => {
  const x = tensor([[[[0, 2], [4, 6]]]]);
  assertValues(F.interpolate(x, [1, 1], { mode: 'area' }), [3]);
  assertValues(F.interpolate(x, [4, 4], { mode: 'nearest' }).sum(), [4 * 12]);
  assertValues(F.interpolate(x, [2, 2], { mode: 'bilinear' }), [0, 2, 4, 6]);
  assert.deepEqual(F.interpolate(x, [3, 5], { mode: 'bicubic' }).shape, [1, 1, 3, 5]);
});
op(['add_', 'addScalar_', 'mul_', 'mulScalar_', 'addcmul_', 'addcdiv_', 'copy_', 'zero_', 'fill_', 'clamp_'], () => {
  const a = tensor([1, 2]);
  assert.equal(a.add_(tensor([1, 1]), 2), a);
  assertValues(a, [3, 4]);
  assertValues(a.add_(1), [4, 5]);
  assertValues(a.mul_(tensor([2, 0.5])), [8, 2.5]);
  assertValues(a.mul_(2), [16, 5]);
  assertValues(a.addcmul_(tensor([1, 2]), tensor([3, 4]), 0.5), [17.5, 9]);
  assertValues(a.addcdiv_(tensor([1, 2]), tensor([2, 4]), 2), [18.5, 10]);
  assertValues(a.copy_(tensor([7, 8])), [7, 8]);
  assertValues(a.clamp_(7.5, null), [7.5, 8]);
  assertValues(a.zero_(), [0, 0]);
  assertValues(a.fill_(3), [3, 3]);
});
op(['setRequiresGrad', 'requiresGrad', 'isLeaf', 'grad', 'setGrad', 'backward'], () => {
  const x = tensor([1, 2, 3]).requiresGrad_();
  assert.ok(x.requiresGrad && x.isLeaf);
  const y = x.mul(x).sum();
  assert.ok(!y.isLeaf);
  y.backward();
  assertValues(x.grad!, [2, 4, 6]);
  x.mul(x).backward(tensor([1, 0, 1]));
  assertValues(x.grad!, [4, 4, 12]);
  x.grad = null;
  assert.equal(x.grad, null);
  x.grad = tensor([5, 5, 5]);
  assertValues(x.grad!, [5, 5, 5]);
});
op(['setGradEnabled', 'isGradEnabled'], () => {
  const x = tensor([1]).requiresGrad_();
  const y = t.noGrad(() => {
    assert.equal(t.isGradEnabled(), false);
    return x.mul(2);
  });
  assert.equal(t.isGradEnabled(), true);
  assert.equal(y.requiresGrad, false);
});
op(['setAutocast', 'autocastState', 'autocastNesting'], () => {
  const a = t.randn([4, 8]);
  const b = t.randn([8, 3]);
  const inside = t.autocast(() => {
    assert.deepEqual(native.autocastState('cpu'), { enabled: true, dtype: 'bfloat16' });
    return a.matmul(b);
  });
  assert.equal(inside.dtype, 'bfloat16');
  assert.equal(native.autocastState('cpu').enabled, false);
  assert.equal(a.matmul(b).dtype, 'float32');
  // Losses stay in float32 under autocast.
  const loss = t.autocast(() => F.crossEntropy(t.randn([4, 3]), t.randint(0, 3, [4])));
  assert.equal(loss.dtype, 'float32');
});
op(['setNumThreads', 'getNumThreads', 'runtimeInfo'], () => {
  const before = t.getNumThreads();
  t.setNumThreads(2);
  assert.equal(t.getNumThreads(), 2);
  t.setNumThreads(before);
  const info = t.runtimeInfo();
  assert.match(info.libtorchVersion, /^\d+\.\d+\.\d+$/);
  assert.ok(info.devices.includes('cpu'));
  assert.equal(info.cudaDeviceCount, info.cudaAvailable ? info.devices.length - 1 : 0);
});

op(['setCurrentDevice'], () => {
  // The CPU is left alone; a GPU on a libtorch without CUDA is a clear error, not a crash.
  native.setCurrentDevice('cpu');
  if (!t.runtimeInfo().cudaAvailable) assert.throws(() => native.setCurrentDevice('cuda:0'), /setCurrentDevice: this libtorch has no CUDA/);
  assert.throws(() => native.setCurrentDevice('gpu'), TypeError);
});

op(['blasInfo'], () => {
  const info = native.blasInfo();
  // Whatever BLAS answers dgemm_ is a loaded shared object; OpenBLAS names its kernels.
  assert.match(info.library, /\.so/);
  if (/openblas/i.test(info.library) || info.openblasCore) assert.ok(info.openblasCore.length > 0);
});

op(['tuneAllocator'], () => {
  // Process-wide and one-way (test/process.test.ts checks its effect in fresh children);
  // here only that it reports the state `allocator` then reads back.
  const state = native.tuneAllocator();
  assert.match(state, /^(glibc heap, freed memory kept for reuse|glibc defaults \(SIMCLR_SYSTEM_MALLOC=1\)|system defaults)$/);
  assert.equal(native.allocator, state);
});

op(
  ['distAvailable', 'distStoreOpen', 'distStorePort', 'distStoreSet', 'distStoreGet', 'distStoreAdd', 'distStoreCheck', 'distStoreWait', 'distStoreClose',
    'distGroupNew', 'distGroupDestroy', 'distAllReduce', 'distAllGather', 'distBroadcast', 'distBarrier', 'distWait', 'distPending', 'distSumWithGrad', 'distSumNow'],
  () => {
    // A group of one on a store at a port the OS picks (test/distributed.test.ts runs two processes).
    assert.equal(native.distAvailable(), true);
    const store = native.distStoreOpen('127.0.0.1', 0, true, 5000);
    try {
      assert.ok(native.distStorePort(store) > 0);
      native.distStoreSet(store, 'k', 'v\u00e9');
      assert.equal(native.distStoreGet(store, 'k'), 'v\u00e9');
      assert.equal(native.distStoreAdd(store, 'n', 2), 2);
      assert.equal(native.distStoreAdd(store, 'n', 3), 5);
      assert.equal(native.distStoreCheck(store, 'k'), true);
      assert.equal(native.distStoreCheck(store, 'absent'), false);
      native.distStoreWait(store, 'k', 1000);
      assert.throws(() => native.distStoreWait(store, 'absent', 50), /timeout|timed out/i);
      const group = native.distGroupNew(store, 0, 1, 5000, '127.0.0.1', 1);
      t.tidy(() => {
        const x = t.tensor([1, 2, 3]);
        const work = native.distAllReduce(group, x.h, 'sum');
        assert.equal(native.distPending(), 1);
        native.distWait(work, 5000);
        assert.equal(native.distPending(), 0);
        assert.deepEqual(x.toArray(), [1, 2, 3]);
        const out = t.zeros([3]);
        native.distWait(native.distAllGather(group, [out.h], x.h), 5000);
        assert.deepEqual(out.toArray(), [1, 2, 3]);
        native.distWait(native.distBroadcast(group, x.h, 0), 5000);
        native.distWait(native.distBarrier(group), 5000);
        const a = t.tensor([1, -2]).requiresGrad_();
        const y = wrap(native.distSumWithGrad(group, a.mul(3).h, 5000));
        assert.deepEqual(y.toArray(), [3, -6]);
        y.sum().backward();
        assert.deepEqual(a.grad!.toArray(), [3, 3]);
        // Figures in float64, and integers exactly (through c10d): on one worker, themselves.
        const before = native.distCounters().allReduceBytes;
        assert.deepEqual(wrap(native.distSumNow(group, t.tensor([0.1, 2e300], undefined, { dtype: 'float64' }).h, 5000)).toArray(), [0.1, 2e300]);
        assert.deepEqual(wrap(native.distSumNow(group, t.tensor([2 ** 40 + 1, -3], undefined, { dtype: 'int64' }).h, 5000)).toArray(), [2 ** 40 + 1, -3]);
        assert.equal(native.distCounters().allReduceBytes - before, 32, 'counted as all-reduces');
      });
      native.distGroupDestroy(group);
      assert.throws(() => native.distBarrier(group), /not an open process group/);
    } finally {
      native.distStoreClose(store);
    }
    assert.throws(() => native.distStorePort(store), /not an open store/);
  },
);

op(['distFileStoreOpen'], () => {
  // One machine's rendezvous: a file store (no port), a group of one over it.
  const dir = mkdtempSync(join(tmpdir(), 'simclr-ops-store-'));
  try {
    const store = native.distFileStoreOpen(join(dir, 'store'), 1);
    native.distStoreSet(store, 'k', 'v');
    assert.equal(native.distStoreGet(store, 'k'), 'v');
    assert.throws(() => native.distStorePort(store), /file store, which has no port/);
    const group = native.distGroupNew(store, 0, 1, 5000, '127.0.0.1', 1);
    t.tidy(() => {
      const x = t.tensor([4, 5]);
      native.distWait(native.distAllReduce(group, x.h, 'sum'), 5000);
      assert.deepEqual(x.toArray(), [4, 5]);
    });
    native.distGroupDestroy(group);
    native.distStoreClose(store);
    // A get of a key nobody sets waits the store's timeout, not c10d's 300 s.
    const short = native.distFileStoreOpen(join(dir, 'short'), 1, 100);
    native.distStoreSet(short, 'k', 'v');
    assert.throws(() => native.distStoreGet(short, 'absent'), /timeout|timed out/i);
    native.distStoreClose(short);
    assert.throws(() => native.distFileStoreOpen(join(dir, 'other'), 1, 0), /a timeout in milliseconds/);
    // c10d's destructor reopens the file (and ends the process where it cannot): a folder is
    // refused, and a store whose file became one is left alive at close.
    assert.throws(() => native.distFileStoreOpen(dir, 1), /exists and is not a regular file/);
    assert.throws(() => native.distFileStoreOpen(join(dir, 'missing', 'store'), 1), /cannot open/);
    const moved = native.distFileStoreOpen(join(dir, 'moved'), 1, 100);
    native.distStoreSet(moved, 'k', 'v');
    rmSync(join(dir, 'moved'));
    mkdirSync(join(dir, 'moved'));
    native.distStoreClose(moved);
    // Closing one of two stores on a path removes the file (world size 1) under the other, whose
    // reads from its old position in a new file looped for ever: its calls now throw.
    const first = native.distFileStoreOpen(join(dir, 'shared'), 1, 100);
    native.distStoreSet(first, 'k', 'v');
    native.distStoreClose(native.distFileStoreOpen(join(dir, 'shared'), 1, 100));
    native.distStoreSet(native.distFileStoreOpen(join(dir, 'shared'), 1, 100), 'a longer key than k', 'v');
    assert.throws(() => native.distStoreGet(first, 'k'), /the store's file .* was removed or replaced/);
    native.distStoreClose(first);
    assert.throws(() => native.distFileStoreOpen('relative/path', 1), /an absolute file path/);
    assert.throws(() => native.distFileStoreOpen(join(dir, 'other'), 0), /a world size between 1 and 1048576/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

op(['distSyncBatchNorm', 'distCounters', 'distReducerNew', 'distReducerArm', 'distReducerFinish', 'distReducerDrop'], () => {
  // A group of one: synchronized batch norm is batch norm over this batch, and the gradient
  // reducer's average over one worker leaves the gradients as they are.
  const store = native.distStoreOpen('127.0.0.1', 0, true, 5000);
  try {
    const group = native.distGroupNew(store, 0, 1, 5000, '127.0.0.1', 1);
    t.tidy(() => {
      const x = t.rand([6, 3, 4, 4]).mul(2).add(1);
      const weight = t.tensor([1, 2, 0.5]);
      const bias = t.tensor([0, 1, -1]);
      const before = native.distCounters();
      const m = x.mean([0, 2, 3]);
      const v = x.var([0, 2, 3], { unbiased: false });
      const expected = x.sub(m.reshape(1, 3, 1, 1)).mul(v.add(1e-5).rsqrt().reshape(1, 3, 1, 1)).mul(weight.reshape(1, 3, 1, 1)).add(bias.reshape(1, 3, 1, 1));
      // Either layout, the same result.
      for (const [input, what] of [[x, 'NCHW'], [x.channelsLast(), 'channels-last']] as const) {
        const [y, mean, variance, count] = native.distSyncBatchNorm(group, input.h, weight.h, bias.h, 1e-5, 5000).map((h) => wrap(h)) as [t.Tensor, t.Tensor, t.Tensor, t.Tensor];
        assert.equal(count.item(), 96);
        assert.ok(mean.sub(m).abs().amax(0).item() < 1e-5 && variance.sub(v).abs().amax(0).item() < 1e-5, `${what}: the batch mean and biased variance`);
        assert.ok(y.sub(expected).abs().amax([0, 1, 2, 3]).item() < 1e-5, `${what}: normalised, scaled and shifted`);
      }
      const after = native.distCounters();
      assert.ok(after.collectives > before.collectives && after.syncBatchNormBytes > before.syncBatchNormBytes, 'counted');

      const a = t.tensor([1, 2, 3]).requiresGrad_();
      const b = t.tensor([[1, -1]]).requiresGrad_();
      const reducer = native.distReducerNew(group, [b.h, a.h], [1, 1]);
      native.distReducerArm(reducer);
      a.mul(2).sum().add(b.mul(3).sum()).backward();
      native.distReducerFinish(reducer, 5000);
      assert.deepEqual(a.grad!.toArray(), [2, 2, 2]);
      assert.deepEqual(b.grad!.toArray(), [3, 3]);
      native.distReducerDrop(reducer);
    });
    native.distGroupDestroy(group);
  } finally {
    native.distStoreClose(store);
  }
});

test('every op in the native table has a forward-value test', () => {
  const ops = Object.keys(native).filter((k) => typeof (native as unknown as Record<string, unknown>)[k] === 'function');
  const missing = ops.filter((k) => !covered.has(k));
  assert.deepEqual(missing, [], `ops without a test: ${missing.join(', ')}`);
  assert.ok(ops.length > 100);
});
