// Gradients of the differentiable ops against central finite differences, in float64.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../src';
import type { Tensor } from '../src';

const { F, tensor } = t;

interface Input {
  shape: number[];
  /** values; random normal when omitted */
  values?: number[];
  /** draw from (low, high) instead of a normal */
  range?: [number, number];
}

/**
 * Checks d(sum(f(x) * w))/dx from backward() against (L(x + h) - L(x - h)) / 2h for every
 * element of every input. Inputs are float64 leaves built afresh for each evaluation.
 */
function gradcheck(name: string, inputs: Input[], f: (xs: Tensor[]) => Tensor, tolerance = 1e-6): void {
  test(`gradient of ${name}`, () =>
    t.tidy(() => {
      const data = inputs.map((inp) => {
        const count = inp.shape.reduce((a, b) => a * b, 1);
        if (inp.values) return Float64Array.from(inp.values);
        const r = inp.range;
        const draw = r ? t.rand([count], { dtype: 'float64' }).mul(r[1] - r[0]).add(r[0]) : t.randn([count], { dtype: 'float64' });
        return draw.data() as Float64Array;
      });
      const build = (values: Float64Array[]): Tensor[] => values.map((v, i) => tensor(v, inputs[i]!.shape).requiresGrad_());
      const xs = build(data);
      const out = f(xs);
      const weights = t.randn(out.shape, { dtype: 'float64' });
      out.mul(weights).sum().backward();
      const loss = (values: Float64Array[]): number => t.tidy(() => t.noGrad(() => f(build(values)).mul(weights).sum().item()));
      const h = 1e-6;
      xs.forEach((x, i) => {
        const analytic = x.grad ? (x.grad.data() as Float64Array) : new Float64Array(data[i]!.length);
        let worst = 0;
        let scale = 1e-3;
        for (let k = 0; k < data[i]!.length; k++) {
          const plus = data.map((d) => Float64Array.from(d));
          const minus = data.map((d) => Float64Array.from(d));
          plus[i]![k]! += h;
          minus[i]![k]! -= h;
          const numeric = (loss(plus) - loss(minus)) / (2 * h);
          worst = Math.max(worst, Math.abs(numeric - analytic[k]!));
          scale = Math.max(scale, Math.abs(numeric));
        }
        assert.ok(worst / scale < tolerance, `${name}: input ${i} gradient off by ${(worst / scale).toExponential(2)} (relative)`);
      });
    }),
  );
}

t.manualSeed(1234);
const v = (...shape: number[]): Input => ({ shape });
const pos = (...shape: number[]): Input => ({ shape, range: [0.5, 2] });

gradcheck('add (broadcast)', [v(2, 3), v(3)], ([a, b]) => a!.add(b!, 0.5));
gradcheck('sub', [v(2, 3), v(2, 1)], ([a, b]) => a!.sub(b!));
gradcheck('mul', [v(2, 3), v(1, 3)], ([a, b]) => a!.mul(b!));
gradcheck('div', [v(2, 3), pos(2, 3)], ([a, b]) => a!.div(b!));
gradcheck('scalar ops', [v(4)], ([a]) => a!.add(2).mul(3).div(4).rsub(1));
gradcheck('pow', [pos(5)], ([a]) => a!.pow(2.5));
gradcheck('pow tensor', [pos(3), v(3)], ([a, b]) => a!.pow(b!));
gradcheck('exp, log, sqrt, rsqrt', [pos(5)], ([a]) => a!.exp().add(a!.log()).add(a!.sqrt()).add(a!.rsqrt()));
gradcheck('abs, tanh, sin, cos, neg', [v(6)], ([a]) => a!.abs().add(a!.tanh()).add(a!.sin()).add(a!.cos()).add(a!.neg()));
gradcheck('sigmoid, relu', [v(8)], ([a]) => a!.sigmoid().add(a!.relu()));
gradcheck('softmax, logSoftmax', [v(3, 4)], ([a]) => a!.softmax(1).add(a!.logSoftmax(0)));
gradcheck('matmul', [v(3, 4), v(4, 2)], ([a, b]) => a!.matmul(b!));
gradcheck('linear', [v(3, 4), v(5, 4), v(5)], ([x, w, b]) => F.linear(x!, w!, b!));
gradcheck('conv2d', [v(2, 2, 5, 5), v(3, 2, 3, 3), v(3)], ([x, w, b]) => F.conv2d(x!, w!, b!, { stride: 2, padding: 1 }));
gradcheck('conv2d groups, dilation', [v(1, 4, 6, 6), v(4, 2, 3, 3)], ([x, w]) => F.conv2d(x!, w!, null, { groups: 2, dilation: 2, padding: 2 }));
gradcheck('batchNorm training', [v(4, 3, 2, 2), v(3), v(3)], ([x, w, b]) =>
  F.batchNorm(x!, { weight: w, bias: b, training: true, runningMean: t.zeros([3], { dtype: 'float64' }), runningVar: t.ones([3], { dtype: 'float64' }) }),
);
gradcheck('batchNorm eval', [v(2, 3), v(3), v(3)], ([x, w, b]) =>
  F.batchNorm(x!, { weight: w, bias: b, training: false, runningMean: tensor([0.1, 0.2, 0.3], undefined, { dtype: 'float64' }), runningVar: tensor([1, 2, 3], undefined, { dtype: 'float64' }) }),
);
gradcheck('maxPool2d', [v(1, 2, 4, 4)], ([x]) => F.maxPool2d(x!, 2));
gradcheck('avgPool2d', [v(1, 2, 4, 4)], ([x]) => F.avgPool2d(x!, 3, { stride: 2, padding: 1, ceilMode: true }));
gradcheck('adaptiveAvgPool2d', [v(1, 2, 5, 5)], ([x]) => F.adaptiveAvgPool2d(x!, 2));
gradcheck('crossEntropy', [v(4, 5)], ([x]) => F.crossEntropy(x!, tensor([1, 0, 4, 2], undefined, { dtype: 'int64' }), { labelSmoothing: 0.1 }));
gradcheck('crossEntropy soft targets', [v(3, 4)], ([x]) => F.crossEntropy(x!, tensor([[0.5, 0.5, 0, 0], [0, 1, 0, 0], [0.25, 0.25, 0.25, 0.25]], undefined, { dtype: 'float64' })));
gradcheck('nllLoss', [v(3, 4)], ([x]) => F.nllLoss(x!.logSoftmax(1), tensor([3, 0, 1], undefined, { dtype: 'int64' })));
gradcheck('normalize', [v(3, 4)], ([x]) => F.normalize(x!, { dim: 1 }));
gradcheck('gridSample bilinear', [v(1, 2, 4, 4), { shape: [1, 3, 3, 2], range: [-0.9, 0.9] }], ([x, g]) => F.gridSample(x!, g!));
gradcheck('gridSample bicubic border', [v(1, 1, 4, 4), { shape: [1, 2, 2, 2], range: [-0.8, 0.8] }], ([x, g]) =>
  F.gridSample(x!, g!, { mode: 'bicubic', paddingMode: 'border' }),
);
gradcheck('affineGrid', [v(2, 2, 3)], ([theta]) => F.affineGrid(theta!, [2, 1, 3, 4]));
gradcheck('interpolate bilinear', [v(1, 1, 3, 3)], ([x]) => F.interpolate(x!, [5, 4]));
gradcheck('sum, mean', [v(2, 3)], ([x]) => x!.sum(1).add(x!.mean(0).sum()));
gradcheck('var, norm', [v(3, 4)], ([x]) => x!.var(1).add(x!.norm(2, 1)));
gradcheck('logsumexp, amax', [v(3, 4)], ([x]) => x!.logsumexp(1).add(x!.amax(1)));
gradcheck('clamp, maximum, minimum', [v(6), v(6)], ([a, b]) => a!.clamp(-0.5, 0.5).add(a!.maximum(b!)).add(a!.minimum(b!)));
gradcheck('where, maskedFill', [v(6), v(6)], ([a, b]) => t.where(a!.gt(0), a!, b!).add(b!.maskedFill(b!.gt(0), 0)));
gradcheck('lerp', [v(4), v(4), { shape: [4], range: [0, 1] }], ([a, b, w]) => a!.lerp(b!, w!));
gradcheck('cat, stack', [v(2, 3), v(1, 3)], ([a, b]) => t.cat([a!, b!], 0).add(t.stack([a!.sum(0), b!.sum(0)], 0).sum()));
gradcheck('reshape, permute, transpose, flatten', [v(2, 3, 4)], ([a]) => a!.permute(2, 0, 1).reshape(4, 6).transpose(0, 1).flatten());
gradcheck('narrow, slice, select', [v(4, 5)], ([a]) => a!.narrow(0, 1, 2).sum().add(a!.slice(1, 0, 5, 2).sum()).add(a!.select(1, 3)));
gradcheck('indexSelect, gather', [v(4, 3)], ([a]) => {
  const idx = tensor([3, 0, 3], undefined, { dtype: 'int64' });
  return a!.indexSelect(0, idx).add(a!.gather(1, tensor([[0], [2], [1], [1]], undefined, { dtype: 'int64' })).sum());
});
gradcheck('expand, repeat, flip, roll', [v(2, 1)], ([a]) => a!.expand(2, 3).add(a!.repeat(1, 3)).flip(1).roll([1], [0]));
gradcheck('chunk, split', [v(6)], ([a]) => a!.chunk(2)[1]!.add(a!.split(3)[0]!));
