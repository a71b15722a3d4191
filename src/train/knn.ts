// kNN evaluation of an encoder: cosine similarity to the training features, the k nearest
// vote with weights exp(sim / T) (k = 200, T = 0.1 as the common SSL monitor).
import * as t from '../torch';
import type { Tensor } from '../torch';
import { imagesTensor, type ImageDataset } from '../data';
import type { SimCLRModel } from '../models';
import { forwardIn, prepareModel } from '../nn';
import { centerCropResize } from '../augment';
import { normalise, type Normalisation } from './normalise';

/** Encoder features (L2-normalised unless unit is false) of a whole data set, in eval mode. */
export function encode(model: SimCLRModel, ds: ImageDataset, norm: Normalisation, { batch = 500, unit = true } = {}): Tensor {
  prepareModel(model).eval();
  const parts: Tensor[] = [];
  t.noGrad(() => {
    for (let start = 0; start < ds.count; start += batch) {
      const end = Math.min(ds.count, start + batch);
      parts.push(
        t.tidy(() => {
          const images = imagesTensor(ds, start, end);
          const x = normalise(centerCropResize(images, ds.size), norm);
          const f = forwardIn(model.encoder, x); // the encoder has no fc: forward gives its features
          return unit ? t.F.normalize(f, { dim: 1 }) : f;
        }),
      );
    }
  });
  const all = t.cat(parts, 0);
  for (const p of parts) p.dispose();
  return all;
}

export function knnAccuracy(model: SimCLRModel, train: ImageDataset, test: ImageDataset, norm: Normalisation, { k = 200, temperature = 0.1 } = {}): number {
  if (!train.labels || !test.labels) throw new Error('kNN evaluation needs labeled training and test sets');
  const bank = encode(model, train, norm);
  const queries = encode(model, test, norm);
  const classes = Math.max(train.classes.length, 1 + Math.max(...train.labels));
  let correct = 0;
  t.tidy(() => {
    const bankLabels = t.tensor(Float64Array.from(train.labels!), undefined, { dtype: 'int64' });
    const testLabels = t.tensor(Float64Array.from(test.labels!), undefined, { dtype: 'int64' });
    const kk = Math.min(k, train.count);
    for (let start = 0; start < test.count; start += 500) {
      t.tidy(() => {
        const end = Math.min(test.count, start + 500);
        const sim = queries.slice(0, start, end).matmul(bank.T);
        const { values, indices } = sim.topk(kk, 1);
        const weights = values.div(temperature).exp();
        const votes = bankLabels.indexSelect(0, indices.flatten()).reshape(end - start, kk);
        const scores = t.zeros([end - start, classes]).scatterAdd(1, votes, weights);
        correct += scores.argmax(1).eq(testLabels.slice(0, start, end)).sum().item();
      });
    }
  });
  bank.dispose();
  queries.dispose();
  return (100 * correct) / test.count;
}
