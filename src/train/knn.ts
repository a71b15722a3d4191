// kNN evaluation of an encoder: cosine similarity to the training features, the k nearest
// vote with weights exp(sim / T) (k = 200, T = 0.1 as the common SSL monitor).
import * as t from '../torch';
import type { Tensor } from '../torch';
import { imageBatch, range, type ImageDataset } from '../data';
import type { SimCLRModel } from '../models';
import { forwardIn, prepareModel } from '../nn';
import { evalInput, type Normalisation } from '../augment';
import { extent } from '../util/extent';

/** Encoder features (L2-normalised unless unit is false) of a whole data set, in eval mode. */
export function encode(model: SimCLRModel, ds: ImageDataset, norm: Normalisation, { batch = 500, unit = true } = {}): Tensor {
  prepareModel(model).eval();
  const parts: Tensor[] = [];
  t.noGrad(() => {
    for (let start = 0; start < ds.count; start += batch) {
      const end = Math.min(ds.count, start + batch);
      parts.push(
        t.tidy(() => {
          const { images, extents } = imageBatch(ds, range(start, end));
          const x = evalInput(images, ds.size, norm, extents);
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

/** Classes of a labeled data set: its class names, or one past the largest label. */
export function classCount(ds: Pick<ImageDataset, 'classes' | 'labels'>): number {
  return Math.max(ds.classes.length, ds.labels ? 1 + extent(ds.labels)[1] : 0);
}

export interface KnnVote {
  /** L2-normalised features of the labeled images [n, d]. */
  bank: Tensor;
  bankLabels: Int32Array;
  /** L2-normalised features to classify [m, d]. */
  queries: Tensor;
  classes: number;
  k?: number;
  temperature?: number;
}

/** The predicted class of each query: the k most similar bank rows vote with weights exp(sim / T). */
export function knnClassify({ bank, bankLabels, queries, classes, k = 200, temperature = 0.1 }: KnnVote): Int32Array {
  const count = queries.shape[0]!;
  const out = new Int32Array(count);
  t.tidy(() => {
    const labels = t.tensor(Float64Array.from(bankLabels), undefined, { dtype: 'int64' });
    const kk = Math.min(k, bank.shape[0]!);
    for (let start = 0; start < count; start += 500) {
      t.tidy(() => {
        const end = Math.min(count, start + 500);
        const sim = queries.slice(0, start, end).matmul(bank.T);
        const { values, indices } = sim.topk(kk, 1);
        const weights = values.div(temperature).exp();
        const votes = labels.indexSelect(0, indices.flatten()).reshape(end - start, kk);
        const scores = t.zeros([end - start, classes]).scatterAdd(1, votes, weights);
        out.set(Int32Array.from(scores.argmax(1).toArray()), start);
      });
    }
  });
  return out;
}

export function knnAccuracy(model: SimCLRModel, train: ImageDataset, test: ImageDataset, norm: Normalisation, { k = 200, temperature = 0.1 } = {}): number {
  if (!train.labels || !test.labels) throw new Error('kNN evaluation needs labeled training and test sets');
  const bank = encode(model, train, norm);
  const queries = encode(model, test, norm);
  try {
    const predicted = knnClassify({ bank, bankLabels: train.labels, queries, classes: classCount(train), k, temperature });
    let correct = 0;
    for (let i = 0; i < test.count; i++) if (predicted[i] === test.labels[i]) correct++;
    return (100 * correct) / test.count;
  } finally {
    bank.dispose();
    queries.dispose();
  }
}
