// Linear evaluation (the standard SSL protocol): a frozen encoder's features, a linear
// classifier trained on all training labels, top-1 on the test set.
import * as t from '../torch';
import { Linear } from '../nn';
import { SGD, warmupCosine } from '../optim';
import type { ImageDataset } from '../data';
import type { SimCLRModel } from '../models';
import { classCount, encode } from './knn';
import type { Normalisation } from './normalise';
import { seededRandom, shuffleInPlace } from '../data';
import type { ProcessGroup } from '../distributed';

export interface LinearEvalOptions {
  epochs?: number;
  lr?: number;
  batchSize?: number;
  seed?: number;
  /** Workers share the encoding of the images; each then trains the same classifier on all features. */
  workers?: ProcessGroup | null;
}

/** Features are standardised with the training set's statistics; SGD (Nesterov) with cosine decay. */
export function linearEvaluation(model: SimCLRModel, train: ImageDataset, test: ImageDataset, norm: Normalisation, o: LinearEvalOptions = {}): number {
  if (!train.labels || !test.labels) throw new Error('linear evaluation needs labeled training and test sets');
  const trainF = encode(model, train, norm, { unit: false, workers: o.workers ?? null });
  const testF = encode(model, test, norm, { unit: false, workers: o.workers ?? null });
  return linearEvaluationOn({ features: trainF, labels: train.labels, classes: classCount(train) }, { features: testF, labels: test.labels }, o);
}

/** Linear evaluation on features already computed (encoder outputs, not normalised); disposes them. */
export function linearEvaluationOn(train: { features: t.Tensor; labels: Int32Array; classes: number }, test: { features: t.Tensor; labels: Int32Array }, o: LinearEvalOptions = {}): number {
  const epochs = o.epochs ?? 30;
  const batch = o.batchSize ?? 256;
  const trainF = train.features;
  const testF = test.features;
  const count = train.labels.length;
  const mean = t.keep(trainF.mean(0, true));
  const std = t.keep(t.tidy(() => trainF.var(0, { unbiased: false, keepdim: true }).add(1e-6).sqrt()));
  const xs = t.keep(t.tidy(() => trainF.sub(mean).div(std)));
  const xt = t.keep(t.tidy(() => testF.sub(mean).div(std)));
  trainF.dispose();
  testF.dispose();
  const device = xs.device;
  const ys = t.keep(t.tensor(Float64Array.from(train.labels), undefined, { dtype: 'int64', device }));
  const classes = train.classes;
  t.manualSeed(o.seed ?? 0);
  const head = new Linear(xs.shape[1]!, classes).to({ device });
  const opt = new SGD(head.parameters(), { lr: o.lr ?? 0.1, momentum: 0.9, nesterov: true });
  const steps = Math.ceil(count / batch);
  const lrAt = warmupCosine({ peak: o.lr ?? 0.1, warmupSteps: 0, totalSteps: epochs * steps });
  const rnd = seededRandom(o.seed ?? 0);
  let step = 0;
  for (let e = 0; e < epochs; e++) {
    const order = shuffleInPlace(Array.from({ length: count }, (_, i) => i), rnd);
    for (let k = 0; k < steps; k++) {
      t.tidy(() => {
        const idx = t.tensor(Float64Array.from(order.slice(k * batch, (k + 1) * batch)), undefined, { dtype: 'int64', device });
        const loss = t.F.crossEntropy(head.forward(xs.indexSelect(0, idx)), ys.indexSelect(0, idx));
        opt.zeroGrad();
        loss.backward();
        opt.step(lrAt(step++));
      });
    }
  }
  const correct = t.tidy(() =>
    t.noGrad(() => {
      const labels = t.tensor(Float64Array.from(test.labels!), undefined, { dtype: 'int64', device });
      return head.forward(xt).argmax(1).eq(labels).sum().item();
    }),
  );
  for (const x of [mean, std, xs, xt, ys]) x.dispose();
  opt.dispose();
  head.dispose();
  return (100 * correct) / test.labels.length;
}
