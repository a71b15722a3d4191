// ResNet architecture facts: parameter counts (torchvision and the SimCLRv2 table), names, shapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../src';

test('parameter counts equal torchvision resnet18 and resnet50 exactly', () => {
  // Built on the meta device: shapes only, no memory.
  assert.equal(t.resnet({ depth: 18, numClasses: 1000, device: 'meta' }).parameterCount(), 11_689_512);
  assert.equal(t.resnet({ depth: 50, numClasses: 1000, device: 'meta' }).parameterCount(), 25_557_032);
});

// The paper rounds to whole millions: R50-1x has 23.51M (torchvision's resnet50 without fc),
// printed as 24M, which is 2.05% away; so every row must round to the table's figure and
// sit within 2% of it or within its rounding (0.5M).
test('encoder sizes match the SimCLRv2 table (to its precision, within 2%)', () => {
  const table: [t.ResNetDepth, number, number, number][] = [
    [50, 1, 0, 24e6],
    [50, 1, 0.0625, 35e6],
    [50, 2, 0, 94e6],
    [101, 1, 0.0625, 65e6],
    [152, 3, 0.0625, 795e6],
  ];
  for (const [depth, width, skRatio, expected] of table) {
    const count = t.resnet({ depth, width, skRatio, device: 'meta' }).parameterCount();
    const name = `R${depth}-${width}x${skRatio ? '-SK' : ''}`;
    const off = Math.abs(count - expected) / expected;
    assert.equal(Math.round(count / 1e6), expected / 1e6, `${name}: ${count} parameters do not round to ${expected / 1e6}M`);
    assert.ok(off < 0.02 || Math.abs(count - expected) <= 0.5e6, `${name}: ${count} parameters, ${(off * 100).toFixed(2)}% from ${expected}`);
  }
});

test('state dict names follow torchvision', () => {
  const keys = [...t.resnet({ depth: 18, numClasses: 10, device: 'meta' }).stateDict().keys()];
  for (const k of ['conv1.weight', 'bn1.running_mean', 'bn1.num_batches_tracked', 'layer1.0.conv1.weight', 'layer2.0.downsample.0.weight', 'layer2.0.downsample.1.running_var', 'fc.bias']) {
    assert.ok(keys.includes(k), `missing ${k}`);
  }
  assert.equal(keys.length, 122);
});

test('every depth, the CIFAR stem and SK give the right feature shapes and run backward', () =>
  t.tidy(() => {
    t.manualSeed(0);
    for (const [opts, input, dim] of [
      [{ depth: 18, imageSize: 32 }, [2, 3, 32, 32], 512],
      [{ depth: 34, width: 0.5, imageSize: 32 }, [2, 3, 32, 32], 256],
      [{ depth: 18, skRatio: 0.0625, inChannels: 1, imageSize: 28 }, [2, 1, 28, 28], 512],
      [{ depth: 50, skRatio: 0.0625, width: 0.25 }, [2, 3, 64, 64], 512],
      [{ depth: 101, width: 0.125 }, [2, 3, 48, 48], 256],
    ] as const) {
      const model = t.resnet(opts);
      assert.equal(model.outputDim, dim);
      const x = t.randn([...input]);
      const f = model.features(x);
      assert.deepEqual(f.shape, [2, dim]);
      f.sum().backward();
      assert.ok(model.parameters().every((p) => p.grad !== null), 'every parameter gets a gradient');
      model.dispose();
    }
  }));

test('the CIFAR stem is chosen for images of 32x32 or less', () => {
  assert.equal(t.resnet({ depth: 18, imageSize: 32, device: 'meta' }).config.cifarStem, true);
  assert.equal(t.resnet({ depth: 18, imageSize: 64, device: 'meta' }).config.cifarStem, false);
  assert.throws(() => t.resnet({ depth: 42 as t.ResNetDepth }), /depth must be one of/);
});

test('SK models use the ResNet-D stem and average-pool shortcuts', () => {
  const keys = [...t.resnet({ depth: 50, skRatio: 0.0625, device: 'meta' }).stateDict().keys()];
  assert.ok(keys.includes('conv1.6.weight'), 'three-conv stem');
  assert.ok(keys.includes('layer2.0.downsample.1.weight'), 'conv after the average pool');
  assert.ok(keys.includes('layer1.0.conv2.select.weight'), 'selective kernel attention');
  assert.ok(!keys.includes('layer1.0.bn2.weight'), 'the SK unit carries its own batch norm');
});

test('train() and eval() reach every submodule; loadStateDict checks names and shapes', () => {
  const a = t.resnet({ depth: 18, numClasses: 10, imageSize: 32 });
  const b = t.resnet({ depth: 18, numClasses: 10, imageSize: 32 });
  a.eval();
  assert.ok(a.namedModules().every(([, m]) => !m.training));
  a.train();
  assert.ok(a.namedModules().every(([, m]) => m.training));
  b.loadStateDict(a.stateDict());
  t.tidy(() => assert.equal(a.conv1.stateDict().get('weight')!.sub(b.conv1.stateDict().get('weight')!).abs().sum().item(), 0));
  const wrong = t.resnet({ depth: 18, numClasses: 5, imageSize: 32 });
  assert.throws(() => wrong.loadStateDict(a.stateDict()), /'fc.weight' has shape \[10x512\] in the state but \[5x512\]/);
  const partial = new Map(a.stateDict());
  partial.delete('bn1.running_mean');
  partial.set('extra.weight', t.zeros([1]));
  assert.throws(() => b.loadStateDict(partial), /missing keys: bn1.running_mean; unexpected keys: extra.weight/);
  for (const m of [a, b, wrong]) m.dispose();
});

test("zeroInitResidual starts each block's last batch norm at zero scale; the run layer asks for it only when told", () =>
  t.tidy(() => {
    const lastBnScales = (m: t.ResNet): number[] => {
      const out: number[] = [];
      for (const [name, p] of m.stateDict()) if (/^layer\d\.\d+\.bn2\.weight$/.test(name)) out.push(p.abs().sum().item());
      return out;
    };
    const zero = lastBnScales(t.resnet({ depth: 18, width: 0.25, imageSize: 32, zeroInitResidual: true }));
    const one = lastBnScales(t.resnet({ depth: 18, width: 0.25, imageSize: 32 }));
    assert.equal(zero.length, 8, 'eight basic blocks');
    assert.deepEqual(zero, new Array(8).fill(0));
    assert.ok(one.every((s) => s > 0), 'without it the scales start at one');
    const ds = { size: 28, channels: 1 } as Parameters<typeof t.run.encoderFor>[1];
    assert.equal(t.run.encoderFor({ depth: 18, width: 0.25, sk: false }, ds).zeroInitResidual, false);
    assert.equal(t.run.encoderFor({ depth: 18, width: 0.25, sk: false, zeroInitResidual: true }, ds).zeroInitResidual, true);
  }));
