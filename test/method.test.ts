// The SimCLRv2 pieces against PyTorch implementations in test/py/reference.py (float64):
// NT-Xent, distillation, LARS, the warm-up + cosine schedule; heads; the views.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../src';
import { assertClose, reference } from './helpers';

const f64 = { dtype: 'float64' as const };
const TOL = 1e-5;

test('NT-Xent value and gradients equal the paper form in PyTorch', () =>
  t.tidy(() => {
    t.manualSeed(20);
    for (const temperature of [0.1, 0.5]) {
      const z1 = t.randn([12, 16], f64).requiresGrad_();
      const z2 = t.randn([12, 16], f64).requiresGrad_();
      const { loss, accuracy } = t.ntXent(z1, z2, { temperature });
      loss.backward();
      const ref = reference('nt_xent', { z1: z1.detach(), z2: z2.detach() }, { temperature });
      assertClose(loss, ref.get('loss')!, TOL, `loss at T=${temperature}`);
      assertClose(z1.grad!, ref.get('gz1')!, TOL, 'grad z1');
      assertClose(z2.grad!, ref.get('gz2')!, TOL, 'grad z2');
      assert.ok(accuracy.item() >= 0 && accuracy.item() <= 1);
    }
  }));

test('NT-Xent: identical views give accuracy 1; gathered negatives and a queue enlarge the candidates', () =>
  t.tidy(() => {
    t.manualSeed(21);
    const z = t.randn([8, 32]);
    const same = t.ntXent(z, z, { temperature: 0.1 });
    assert.equal(same.accuracy.item(), 1);
    // A gather that adds another worker's 8 views before ours: more negatives, higher loss.
    const other = t.F.normalize(t.randn([8, 32]), { dim: 1 });
    const gathered = t.ntXent(z, z.mul(1.1), { temperature: 0.5, gather: (local) => ({ all: t.cat([other, local]), offset: 8 }) });
    const alone = t.ntXent(z, z.mul(1.1), { temperature: 0.5 });
    assert.ok(gathered.loss.item() > alone.loss.item());
    const queued = t.ntXent(z, z.mul(1.1), { temperature: 0.5, queue: t.randn([64, 32]) });
    assert.ok(queued.loss.item() > alone.loss.item());
  }));

test('distillation loss (and its mix with labels) equals PyTorch', () =>
  t.tidy(() => {
    t.manualSeed(22);
    for (const [temperature, alpha] of [
      [1, 1],
      [2, 0.5],
    ] as const) {
      const student = t.randn([10, 7], f64).requiresGrad_();
      const teacher = t.randn([10, 7], f64).mul(3);
      const labels = t.randint(0, 7, [10]);
      const loss = t.mixedDistillationLoss(student, teacher, labels, { temperature, alpha });
      loss.backward();
      const ref = reference('distill', { student: student.detach(), teacher, labels }, { temperature, alpha });
      assertClose(loss, ref.get('loss')!, TOL, `loss T=${temperature} alpha=${alpha}`);
      assertClose(student.grad!, ref.get('gstudent')!, TOL, 'grad student');
    }
    // With a teacher equal to one-hot labels at T=1, distillation is the cross-entropy.
    const s = t.randn([4, 3], f64);
    const y = t.tensor([0, 2, 1, 1], undefined, { dtype: 'int64' });
    assertClose(t.distillationLoss(s, y.oneHot(3).to('float64').mul(1e4)), t.crossEntropy(s, y), 1e-9, 'one-hot teacher');
  }));

test('LARS steps equal SimCLR\'s update written in PyTorch (norm/bias excluded)', () =>
  t.tidy(() => {
    t.manualSeed(23);
    const w = t.randn([6, 5], f64);
    const conv = t.randn([4, 3, 3, 3], f64);
    const b = t.randn([6], f64);
    const params: [string, t.Tensor][] = [
      ['w', w.clone().requiresGrad_()],
      ['conv', conv.clone().requiresGrad_()],
      ['b', b.clone().requiresGrad_()],
    ];
    const opt = new t.LARS(params, { lr: 0.7, momentum: 0.9, weightDecay: 1e-4, trustCoefficient: 0.001 });
    const inputs: Record<string, t.Tensor> = { 'p.w': w, 'p.conv': conv, 'p.b': b };
    for (let step = 0; step < 2; step++) {
      for (const [name, p] of params) {
        const g = t.randn(p.shape, f64);
        inputs[`g${step}.${name}`] = g;
        p.grad = g;
      }
      opt.step();
    }
    const ref = reference('lars', inputs, { steps: 2, lr: 0.7, momentum: 0.9, wd: 1e-4, eta: 0.001 });
    const state = opt.stateDict();
    for (const [name, p] of params) {
      assertClose(p.detach(), ref.get(`p.${name}`)!, TOL, `parameter ${name}`);
      assertClose(state.get(`momentum.${name}`)!, ref.get(`m.${name}`)!, TOL, `momentum ${name}`);
    }
    // The state round-trips into a fresh optimiser.
    const again = new t.LARS(params, { lr: 0.7 });
    again.loadStateDict(state);
    assertClose(again.stateDict().get('momentum.w')!, state.get('momentum.w')!, 0, 'restored momentum');
    assert.throws(() => again.loadStateDict(new Map([['momentum.zz', t.zeros([1])]])), /'zz' is not a parameter/);
    opt.dispose();
    again.dispose();
  }));

test('learning-rate scaling and ten warm-up + cosine steps equal PyTorch', () =>
  t.tidy(() => {
    for (const [scaling, batch] of [
      ['linear', 512],
      ['sqrt', 4096],
    ] as const) {
      const peak = t.scaleLearningRate(0.3, batch, scaling);
      const lr = t.warmupCosine({ peak, warmupSteps: 3, totalSteps: 10 });
      const ours = t.tensor(Array.from({ length: 10 }, (_, i) => lr(i)), undefined, f64);
      const ref = reference('schedule', {}, { base: 0.3, batch, scaling, warmup: 3, total: 10, steps: 10 });
      assertClose(ours, ref.get('lr')!, 1e-12, `${scaling} schedule`);
    }
    assert.equal(t.scaleLearningRate(1, 512), 2);
    assert.equal(t.warmupCosine({ peak: 1, warmupSteps: 2, totalSteps: 10 })(10), 0);
  }));

test('projection head: 3 layers, hidden = encoder width, 128 out, no ReLU or bias at the end', () => {
  const head = new t.ProjectionHead(2048, { device: 'meta' });
  assert.equal(head.layers.length, 3);
  const names = head.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`);
  assert.deepEqual(names, [
    '0.linear.weight:2048x2048',
    '0.bn.weight:2048',
    '0.bn.bias:2048',
    '1.linear.weight:2048x2048',
    '1.bn.weight:2048',
    '1.bn.bias:2048',
    '2.linear.weight:128x2048',
    '2.bn.weight:128',
  ]);
  assert.equal(head.parameterCount(), 2 * 2048 * 2048 + 4 * 2048 + 128 * 2048 + 128);
  assert.equal(head.layers[2]!.relu, false);
});

test('fine-tune selector: the classifier starts from the encoder plus the chosen head layers', () =>
  t.tidy(() => {
    t.manualSeed(24);
    const model = new t.SimCLRModel({ encoder: { depth: 18, width: 0.25, cifarStem: true } });
    const x = t.randn([4, 3, 16, 16]);
    assert.deepEqual(model.forward(x).shape, [4, 128]);
    for (const k of [0, 1, 2]) {
      const clf = new t.Classifier(model, 10, { fineTuneFrom: k });
      assert.deepEqual(clf.forward(x).shape, [4, 10]);
      assert.equal(clf.classifier.linear.weight.shape[1], 128);
      const headParams = clf.namedParameters().filter(([n]) => n.startsWith('head.')).length;
      assert.equal(headParams, 3 * k, `fineTuneFrom ${k}: ${headParams} head parameters trained`);
      assert.equal(clf.forward(x).abs().sum().item(), 0, 'zero-initialised classifier');
    }
    assert.throws(() => new t.Classifier(model, 10, { fineTuneFrom: 4 }), /fineTuneFrom must be an integer in 0..3/);
  }));

test('moving a classifier moves what it owns, the head layers it does not train too (a device move leaves none behind)', () =>
  t.tidy(() => {
    t.manualSeed(25);
    const clf = new t.Classifier(new t.SimCLRModel({ encoder: { depth: 18, width: 0.25, cifarStem: true } }), 10, { fineTuneFrom: 1 });
    assert.ok(clf.namedParameters().length < clf.stateDict().size - clf.namedBuffers().length, 'some head layers are not trained');
    clf.to({ dtype: 'float64' });
    const left = [...clf.stateDict()].filter(([, v]) => v.dtype === 'float32').map(([k]) => k);
    assert.deepEqual(left, [], `left behind: ${left.join(', ')}`);
    assert.equal(clf.forward(t.randn([2, 3, 16, 16]).to('float64')).dtype, 'float64');
    clf.dispose();
  }));

test('views: per-image parameters fall in their ranges at the configured rates', () =>
  t.tidy(() => {
    t.manualSeed(25);
    const n = 20000;
    const o = t.simclrViewOptions(32, { crop: { scale: [0.08, 1], ratio: [3 / 4, 4 / 3], pixelAligned: false } });
    const p = t.sampleViewParams(n, 32, 32, o);
    const col = (k: number) => p.box.select(1, k);
    const area = col(2).mul(col(3));
    assert.ok(area.amin(0).item() >= 0.08 - 1e-6 && area.amax(0).item() <= 1 + 1e-6, 'crop areas in [0.08, 1]');
    const ratio = col(2).div(col(3));
    assert.ok(ratio.amin(0).item() >= 0.75 - 1e-5 && ratio.amax(0).item() <= 4 / 3 + 1e-5, 'aspect ratios in [3/4, 4/3]');
    assert.ok(col(0).add(col(2)).amax(0).item() <= 1 + 1e-6 && col(1).add(col(3)).amax(0).item() <= 1 + 1e-6, 'boxes inside the image');
    const rate = (b: t.Tensor) => b.to('float32').mean().item();
    assert.ok(Math.abs(rate(p.flip) - 0.5) < 0.02, 'flip rate');
    assert.ok(Math.abs(rate(p.jitter) - 0.8) < 0.02, 'jitter rate');
    assert.ok(Math.abs(rate(p.gray) - 0.2) < 0.02, 'grayscale rate');
    assert.equal(rate(p.blur), 0, 'no blur at 32x32');
    // s = 0.5 at 32x32: brightness/contrast/saturation in [0.6, 1.4], hue in [-0.1, 0.1]
    const range = (k: number) => {
      const v = p.colour.select(1, k).maskedSelect(p.jitter);
      return [v.amin(0).item(), v.amax(0).item()];
    };
    for (const k of [0, 1, 2]) {
      const [lo, hi] = range(k);
      assert.ok(lo! >= 0.6 - 1e-6 && hi! <= 1.4 + 1e-6 && hi! - lo! > 0.7, `factor ${k} range [${lo}, ${hi}]`);
    }
    const [hlo, hhi] = range(3);
    assert.ok(hlo! >= -0.1 - 1e-6 && hhi! <= 0.1 + 1e-6);
    const orders = p.order.sort(1).values;
    assert.deepEqual(orders.amin(0).toArray(), [0, 1, 2, 3], 'every order is a permutation');
    assert.deepEqual(orders.amax(0).toArray(), [0, 1, 2, 3]);
    const blurred = t.sampleViewParams(n, 96, 96, t.simclrViewOptions(96));
    assert.ok(Math.abs(rate(blurred.blur) - 0.5) < 0.02, 'blur rate above 32x32');
    assert.ok(blurred.sigma.amin(0).item() >= 0.1 && blurred.sigma.amax(0).item() <= 2);
  }));

test('views: whole-pixel crop boxes as torchvision draws them, every origin reachable', () =>
  t.tidy(() => {
    t.manualSeed(26);
    const n = 20000;
    const p = t.sampleViewParams(n, 28, 28, { ...t.fineTuneViewOptions(28), crop: { scale: [0.08, 1], pixelAligned: true } });
    const px = p.box.mul(28);
    assert.ok(px.sub(px.round()).abs().amax([0, 1]).item() < 1e-4, 'origins and sides are whole pixels');
    const col = (k: number) => px.select(1, k);
    // rounding each side by up to half a pixel: the smallest (0.08 of 784 = 62.7 px^2) moves by < 10 px^2
    const area = col(2).mul(col(3));
    assert.ok(area.amin(0).item() >= 62.7 - 10 && area.amax(0).item() <= 784 + 1e-3, `crop areas ${area.amin(0).item()}..${area.amax(0).item()}`);
    const right = col(0).add(col(2));
    assert.ok(right.amax(0).item() <= 28 + 1e-4, 'boxes inside the image');
    // a 20-pixel-wide crop can start at 0..8: both ends occur
    const w20 = col(2).sub(20).abs().lt(0.5);
    const starts = col(0).maskedSelect(w20);
    assert.ok(starts.amin(0).item() < 0.5 && starts.amax(0).item() > 7.5, `origins of 20-pixel crops span 0..8 (${starts.amin(0).item()}..${starts.amax(0).item()})`);
    const full = col(2).eq(28).to('float32').mean().item();
    assert.ok(full > 0.01, `some crops keep the full width (${full})`);
  }));

test('colour jitter on the CPU (each op on its own images only) equals every op on every image', () =>
  t.tidy(() => {
    t.manualSeed(27);
    const o = t.simclrViewOptions(32);
    const p = t.sampleViewParams(64, 16, 16, o);
    for (const channels of [1, 3]) {
      const x = t.rand([64, channels, 16, 16]);
      const masked = t.colourJitterMasked(x, p.colour, p.order);
      const subset = t.colourJitterBySubset(x, p.colour, p.order);
      assert.equal(subset.sub(masked).abs().amax([0, 1, 2, 3]).item(), 0, `${channels} channel(s)`);
      assert.ok(masked.sub(x).abs().amax([0, 1, 2, 3]).item() > 0.01, 'the jitter changed the images');
    }
  }));

test('views: identity settings return the input; same seed, same views; outputs in [0, 1]; 1 and 3 channels', () =>
  t.tidy(() => {
    t.manualSeed(26);
    const identity: t.ViewOptions = { size: 32, crop: false, flipProb: 0, jitter: false, grayscaleProb: 0, blur: false };
    for (const channels of [1, 3]) {
      const x = t.rand([6, channels, 32, 32]);
      const same = t.applyView(x, t.sampleViewParams(6, 32, 32, identity), identity);
      assert.equal(same.sub(x).abs().amax([0, 1, 2, 3]).item(), 0, `identity, ${channels} channel(s)`);
      const noJitter = { ...identity, jitter: { strength: 0, prob: 1 } };
      assert.ok(t.applyView(x, t.sampleViewParams(6, 32, 32, noJitter), noJitter).sub(x).abs().amax([0, 1, 2, 3]).item() < 1e-6, 'jitter of strength 0');
      const o = t.simclrViewOptions(32);
      t.manualSeed(5);
      const [a1, a2] = t.simclrViews(x, o);
      t.manualSeed(5);
      const [b1, b2] = t.simclrViews(x, o);
      assert.deepEqual(a1.toArray(), b1.toArray());
      assert.deepEqual(a2.toArray(), b2.toArray());
      assert.ok(a1.sub(a2).abs().amax([0, 1, 2, 3]).item() > 0.1, 'two different views');
      assert.deepEqual(a1.shape, [6, channels, 32, 32]);
      const big = t.simclrView(t.rand([4, channels, 64, 64]), t.simclrViewOptions(48));
      assert.deepEqual(big.shape, [4, channels, 48, 48]);
      for (const v of [a1, a2, big]) assert.ok(v.amin([0, 1, 2, 3]).item() >= 0 && v.amax([0, 1, 2, 3]).item() <= 1, 'in [0, 1]');
    }
    // uint8 input works the same as float in [0, 1]
    const u8 = t.randint(0, 256, [2, 3, 32, 32], { dtype: 'uint8' });
    assert.equal(t.centerCropResize(u8, 32).sub(u8.to('float32').div(255)).abs().amax([0, 1, 2, 3]).item(), 0);
  }));

test('views of large images are made a slice of images at a time: the same as each image on its own', () =>
  t.tidy(() => {
    t.manualSeed(31);
    // 96 px, 3 channels: 27,648 elements an image, so 40 images make two slices (37 and 3).
    const o = t.simclrViewOptions(96);
    const n = 40;
    assert.ok(n * 3 * 96 * 96 > t.VIEW_SLICE_ELEMENTS, 'the batch is sliced');
    const x = t.randint(0, 256, [n, 3, 110, 110], { dtype: 'uint8' });
    const p = t.sampleViewParams(n, 110, 110, o);
    const batch = t.applyView(x, p, o);
    assert.deepEqual(batch.shape, [n, 3, 96, 96]);
    for (const i of [0, 18, 36, 37, 39]) {
      const own = Object.fromEntries(Object.entries(p).map(([k, v]) => [k, (v as t.Tensor).narrow(0, i, 1)])) as unknown as t.ViewParams;
      const alone = t.applyView(x.narrow(0, i, 1), own, o);
      const diff = alone.sub(batch.narrow(0, i, 1)).abs().amax([0, 1, 2, 3]).item();
      assert.ok(diff < 1e-5, `image ${i}: sliced batch and the image alone differ by ${diff}`);
    }
  }));

test('fine-tuning views only crop and flip; evaluation crops the centre', () =>
  t.tidy(() => {
    const o = t.fineTuneViewOptions(32);
    assert.equal(o.jitter, false);
    assert.equal(o.grayscaleProb, 0);
    assert.equal(o.blur, false);
    // A constant image stays constant under crop + flip: no colour op touched it.
    const flat = t.full([8, 3, 32, 32], 0.3);
    const v = t.simclrView(flat, o);
    assert.ok(v.sub(0.3).abs().amax([0, 1, 2, 3]).item() < 1e-6);
    // Evaluation at 64px keeps the central 87.5% (56px), resized back.
    const ramp = t.arange(0, 64, 1, { dtype: 'float32' }).div(63).reshape(1, 1, 1, 64).expand(1, 1, 64, 64);
    const c = t.centerCropResize(ramp, 64);
    assert.ok(c.amin([0, 1, 2, 3]).item() > 3 / 63 && c.amax([0, 1, 2, 3]).item() < 60 / 63);
  }));

test('views: grayscale makes the channels equal, hue 0 is the identity', () =>
  t.tidy(() => {
    const x = t.rand([4, 3, 8, 8]);
    const gray: t.ViewOptions = { size: 8, crop: false, flipProb: 0, jitter: false, grayscaleProb: 1, blur: false };
    const g = t.applyView(x, t.sampleViewParams(4, 8, 8, gray), gray);
    assert.ok(g.select(1, 0).sub(g.select(1, 2)).abs().amax([0, 1, 2]).item() < 1e-7);
    assert.ok(t.shiftHue(x, t.zeros([4])).sub(x).abs().amax([0, 1, 2, 3]).item() < 1e-5);
    // a half turn of hue maps pure red to cyan
    const red = t.tensor([1, 0, 0]).reshape(1, 3, 1, 1);
    assert.deepEqual(t.shiftHue(red, t.tensor([0.5])).toArray(), [0, 1, 1]);
  }));
