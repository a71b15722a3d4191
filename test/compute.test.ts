// Compute settings: bfloat16 autocast and channels-last, chosen from the processor; the
// OpenBLAS check; and that bfloat16 changes gradients only by bfloat16's rounding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as t from '../src';
import { decodeImages, listImages } from '../src/data';
import { checkBlasProduct } from '../src/torch/blas-check';
import { candidateCores, isGenericCore } from '../src/torch/blas';
import { DATASETS } from './helpers';

test('auto precision follows the processor; explicit settings win', () => {
  const amx = t.resolveCompute({}, new Set(['avx512f', 'amx_bf16', 'avx512_bf16']));
  assert.equal(amx.precision, 'bf16');
  assert.match(amx.why.precision, /AMX/);
  assert.equal(t.resolveCompute({}, new Set(['avx512f', 'avx512_bf16'])).precision, 'bf16');
  const old = t.resolveCompute({}, new Set(['avx2']));
  assert.equal(old.precision, 'fp32');
  assert.match(old.why.precision, /no bfloat16/);
  const forced = t.resolveCompute({ precision: 'fp32', channelsLast: 'off' }, new Set(['amx_bf16']));
  assert.deepEqual([forced.precision, forced.channelsLast], ['fp32', false]);
  assert.equal(t.resolveCompute({ channelsLast: 'auto' }).channelsLast, t.runtimeInfo().mkldnn);
});

test('OpenBLAS kernel families: generic ones are recognised, candidates follow the flags', () => {
  assert.ok(isGenericCore('Prescott'));
  assert.ok(!isGenericCore('SkylakeX'));
  assert.deepEqual(candidateCores(new Set(['avx512f', 'avx512_bf16', 'avx2'])), ['Cooperlake', 'SkylakeX', 'Haswell']);
  assert.deepEqual(candidateCores(new Set(['sse2'])), []);
  // The BLAS this process loaded multiplies float64 matrices exactly.
  const check = checkBlasProduct(t.native);
  assert.equal(check.maxError, 0);
  if (t.native.blasInfo().openblasCore) assert.ok(!isGenericCore(t.native.blasInfo().openblasCore) || t.blas.coreType === null, 'a generic OpenBLAS kernel was kept although a better one was chosen');
});

test('prepareModel lays convolution weights out channels-last; the state dict keeps its values', () => {
  t.manualSeed(3);
  const model = t.resnet({ depth: 18, width: 0.25, cifarStem: true, numClasses: 10 });
  const before = model.stateDict().get('layer1.0.conv1.weight')!.clone();
  t.nn.prepareModel(model, { precision: 'fp32', channelsLast: true, device: 'cpu', why: { precision: '', channelsLast: '' } });
  const w = model.stateDict().get('layer1.0.conv1.weight')!;
  assert.ok(w.isContiguous('channels_last') && !w.isContiguous());
  assert.equal(w.sub(before).abs().amax([0, 1, 2, 3]).item(), 0);
  t.nn.prepareModel(model, { precision: 'fp32', channelsLast: false, device: 'cpu', why: { precision: '', channelsLast: '' } });
  assert.ok(model.stateDict().get('layer1.0.conv1.weight')!.isContiguous());
  model.dispose();
});

test('bfloat16 autocast changes a ResNet batch gradient only by bfloat16 rounding', async () => {
  const list = listImages(join(DATASETS, 'cifar10', 'test'));
  const { pixels } = await decodeImages(list.files.slice(0, 32), 32, 3);
  const x = t.keep(t.fromBytes(pixels, [32, 3, 32, 32], 'uint8').to('float64').div(255));
  const labels = t.keep(t.tensor(Float64Array.from(list.labels!.slice(0, 32)), undefined, { dtype: 'int64' }));
  t.manualSeed(5);
  const model = t.resnet({ depth: 18, width: 0.25, cifarStem: true, numClasses: 10 });
  // float64 is the truth the others are measured against.
  const gradients = (dtype: 'float64' | 'float32', precision: t.Precision, channelsLast: boolean): t.Tensor => {
    const s = { precision, channelsLast, device: 'cpu', why: { precision: '', channelsLast: '' } };
    model.to({ dtype });
    t.nn.prepareModel(model, s);
    model.zeroGrad();
    t.tidy(() => t.F.crossEntropy(t.nn.forwardIn(model, x.to(dtype), s), labels).backward());
    return t.keep(t.cat(model.parameters().map((p) => p.grad!.reshape([-1]).to('float64'))));
  };
  const exact = gradients('float64', 'fp32', false);
  const rel = (a: t.Tensor): number => a.sub(exact).norm().item() / exact.norm().item();
  const fp32 = rel(gradients('float32', 'fp32', false));
  const fp32cl = rel(gradients('float32', 'fp32', true));
  const bf16Grad = gradients('float32', 'bf16', true);
  const bf16 = rel(bf16Grad);
  const cos = bf16Grad.mul(exact).sum().item() / (bf16Grad.norm().item() * exact.norm().item());
  console.log(`gradient error against float64: float32 ${fp32.toExponential(2)}, float32 channels-last ${fp32cl.toExponential(2)}, bf16 ${bf16.toExponential(2)} (cosine ${cos.toFixed(5)})`);
  // Channels-last stays float32, but libtorch 1.13's NHWC batch norm takes the variance in
  // one pass (~2e-5 relative on inputs whose mean exceeds their spread), which a fresh
  // ResNet amplifies to ~2e-3; bfloat16 keeps 8 significant bits (unit rounding 2^-9) and
  // is clearly further off, yet gives the same gradient.
  assert.ok(fp32cl < 0.01 && fp32cl < bf16 / 5, `channels-last float32: ${fp32cl} (bf16: ${bf16})`);
  assert.ok(bf16 > 2 * fp32, `bfloat16 is as exact as float32 (${bf16}): autocast did not apply`);
  assert.ok(bf16 < 0.1, `bfloat16 gradient differs by ${bf16} relative to float64`);
  assert.ok(cos > 0.99, `bfloat16 gradient direction off: cosine ${cos}`);
  model.dispose();
});
