// Our values and gradients against Debian's python3-torch on the same inputs, which
// travel between the two through safetensors files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../src';
import type { Tensor } from '../src';
import { assertClose, reference } from './helpers';

const { F } = t;
const TOL = 1e-5;

function leaves(...xs: Tensor[]): Tensor[] {
  return xs.map((x) => x.requiresGrad_());
}

test('conv2d matches PyTorch (values and gradients)', () =>
  t.tidy(() => {
    t.manualSeed(1);
    for (const args of [
      { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 },
      { stride: [2, 2], padding: [0, 1], dilation: [1, 1], groups: 2 },
      { stride: [1, 2], padding: [2, 2], dilation: [2, 2], groups: 1 },
    ]) {
      const [x, w, b] = leaves(t.randn([2, 4, 9, 9]), t.randn([6, 4 / args.groups, 3, 3]), t.randn([6]));
      const y = F.conv2d(x!, w!, b!, { stride: args.stride as [number, number], padding: args.padding as [number, number], dilation: args.dilation as [number, number], groups: args.groups });
      const gy = t.randn(y.shape);
      y.mul(gy).sum().backward();
      const ref = reference('conv2d', { x: x!, w: w!, b: b!, gy }, args);
      assertClose(y, ref.get('y')!, TOL, 'y');
      assertClose(x!.grad!, ref.get('gx')!, TOL, 'grad x');
      assertClose(w!.grad!, ref.get('gw')!, TOL, 'grad w');
      assertClose(b!.grad!, ref.get('gb')!, TOL, 'grad b');
    }
  }));

test('batch norm matches PyTorch in training and eval (values, gradients, running stats)', () =>
  t.tidy(() => {
    t.manualSeed(2);
    for (const training of [true, false]) {
      const [x, weight, bias] = leaves(t.randn([8, 5, 4, 4]).mul(3).add(1), t.randn([5]), t.randn([5]));
      const rm = t.randn([5]);
      const rv = t.rand([5]).add(0.5);
      const ref = reference('batch_norm', { x: x!, weight: weight!, bias: bias!, rm, rv, gy: t.randn([8, 5, 4, 4]) }, { training, momentum: 0.1, eps: 1e-5 });
      const y = F.batchNorm(x!, { weight, bias, runningMean: rm, runningVar: rv, training, momentum: 0.1, eps: 1e-5 });
      assertClose(y, ref.get('y')!, TOL, `y (training=${training})`);
      assertClose(rm, ref.get('rm')!, TOL, 'running mean');
      assertClose(rv, ref.get('rv')!, TOL, 'running var');
    }
  }));

test('batch norm gradients match PyTorch', () =>
  t.tidy(() => {
    t.manualSeed(3);
    const [x, weight, bias] = leaves(t.randn([6, 3, 5, 5]), t.randn([3]), t.randn([3]));
    const gy = t.randn([6, 3, 5, 5]);
    const y = F.batchNorm(x!, { weight, bias, runningMean: t.zeros([3]), runningVar: t.ones([3]), training: true });
    y.mul(gy).sum().backward();
    const ref = reference('batch_norm', { x: x!.detach(), weight: weight!.detach(), bias: bias!.detach(), rm: t.zeros([3]), rv: t.ones([3]), gy }, { training: true, momentum: 0.1, eps: 1e-5 });
    assertClose(x!.grad!, ref.get('gx')!, 1e-4, 'grad x');
    assertClose(weight!.grad!, ref.get('gweight')!, TOL, 'grad weight');
    assertClose(bias!.grad!, ref.get('gbias')!, TOL, 'grad bias');
  }));

test('grid_sample and affine_grid match PyTorch', () =>
  t.tidy(() => {
    t.manualSeed(4);
    for (const [mode, padding, align] of [
      ['bilinear', 'zeros', false],
      ['bicubic', 'border', true],
      ['nearest', 'reflection', false],
    ] as const) {
      const theta = t.randn([2, 2, 3]).mul(0.3).add(t.tensor([[1, 0, 0], [0, 1, 0]]));
      const grid = F.affineGrid(theta, [2, 3, 7, 6], align);
      assertClose(grid, reference('affine_grid', { theta }, { size: [2, 3, 7, 6], align }).get('grid')!, TOL, 'affine grid');
      const [x, g] = leaves(t.randn([2, 3, 8, 8]), grid.detach());
      const y = F.gridSample(x!, g!, { mode, paddingMode: padding, alignCorners: align });
      const gy = t.randn(y.shape);
      y.mul(gy).sum().backward();
      const ref = reference('grid_sample', { x: x!.detach(), grid: g!.detach(), gy }, { mode, padding, align });
      assertClose(y, ref.get('y')!, TOL, `${mode} y`);
      assertClose(x!.grad!, ref.get('gx')!, TOL, `${mode} grad x`);
      if (mode !== 'nearest') assertClose(g!.grad!, ref.get('ggrid')!, 1e-4, `${mode} grad grid`);
    }
  }));

test('cross-entropy matches PyTorch (with and without label smoothing)', () =>
  t.tidy(() => {
    t.manualSeed(5);
    for (const args of [{ smoothing: 0 }, { smoothing: 0.1 }, { smoothing: 0, reduction: 'none' }] as const) {
      const logits = t.randn([16, 10]).mul(2).requiresGrad_();
      const target = t.randint(0, 10, [16]);
      const loss = F.crossEntropy(logits, target, { labelSmoothing: args.smoothing, reduction: 'reduction' in args ? args.reduction : 'mean' });
      loss.backward(t.onesLike(loss));
      const ref = reference('cross_entropy', { logits: logits.detach(), target }, args);
      assertClose(loss, ref.get('loss')!, TOL, 'loss');
      assertClose(logits.grad!, ref.get('glogits')!, TOL, 'grad logits');
    }
  }));

for (const depth of [18, 50] as const) {
  for (const training of [true, false]) {
    test(`ResNet-${depth} (${training ? 'train' : 'eval'}) matches torchvision with the same weights`, () =>
      t.tidy(() => {
        t.manualSeed(10 + depth);
        const model = t.resnet({ depth, numClasses: 10 });
        // Non-trivial running statistics so eval mode is tested for real.
        t.noGrad(() => {
          for (const [name, b] of model.namedBuffers()) {
            if (name.endsWith('running_mean')) b.normal_(0, 0.1);
            if (name.endsWith('running_var')) b.uniform_(0.5, 1.5);
          }
        });
        const inputs: Record<string, Tensor> = {};
        for (const [k, v] of model.stateDict()) inputs[`state.${k}`] = v;
        const x = t.randn([4, 3, 64, 64]).requiresGrad_();
        const gy = t.randn([4, 10]);
        inputs.x = x.detach();
        inputs.gy = gy;
        const ref = reference('resnet', inputs, { arch: `resnet${depth}`, classes: 10, training });
        model.train(training);
        const y = model.forward(x);
        y.mul(gy).sum().backward();
        assertClose(y, ref.get('y')!, 1e-4, 'logits');
        assertClose(x.grad!, ref.get('gx')!, 1e-4, 'input gradient');
        let checked = 0;
        for (const [name, p] of model.namedParameters()) {
          assertClose(p.grad!, ref.get(`grad.${name}`)!, 1e-4, `grad of ${name}`);
          checked++;
        }
        assert.equal(checked, depth === 18 ? 62 : 161);
        for (const [name, b] of model.namedBuffers()) {
          if (name.endsWith('num_batches_tracked')) assert.equal(b.item(), ref.get(`buffer.${name}`)!.item(), name);
          else assertClose(b, ref.get(`buffer.${name}`)!, 1e-4, name);
        }
        model.dispose();
      }));
  }
}
