// kNN evaluation of an encoder: cosine similarity to the training features, the k nearest
// vote with weights exp(sim / T) (k = 200, T = 0.1 as the common SSL monitor).
import * as t from '../torch';
import type { Tensor } from '../torch';
import { imageBatch, range, type ImageDataset } from '../data';
import type { SimCLRModel } from '../models';
import { inference } from '../nn';
import { evalInput, type Normalisation } from '../augment';
import { extent } from '../util/extent';
import type { ProcessGroup } from '../distributed';
import { batchStarts } from './classifier';

/**
 * Encoder features (L2-normalised unless unit is false) of a whole data set, in eval mode.
 * With workers, each encodes its share of the batches and every worker gets all of them
 * (each row summed with zeros from the others: the same bits as one process).
 */
export function encode(model: SimCLRModel, ds: ImageDataset, norm: Normalisation, { batch = 500, unit = true, workers = null as ProcessGroup | null } = {}): Tensor {
  const group = workers && workers.worldSize > 1 ? workers : null;
  const parts: { start: number; features: Tensor }[] = [];
  try {
    inference(model.encoder, (forward) => {
      for (const start of batchStarts(ds.count, batch, group)) {
        const end = Math.min(ds.count, start + batch);
        const features = t.tidy(() => {
          const { images, extents } = imageBatch(ds, range(start, end));
          const f = forward(evalInput(images, ds.size, norm, extents)); // the encoder has no fc: forward gives its features
          return unit ? t.F.normalize(f, { dim: 1 }) : f;
        });
        parts.push({ start, features });
      }
    });
  } catch (e) {
    for (const p of parts) p.features.dispose();
    throw e;
  }
  return rowsFromWorkers(parts, ds.count, group);
}

/**
 * The rows of a whole set, [count, d], from the parts each worker computed (each part's rows
 * start at `start`; on one process, the parts in order cover every row). With workers, each
 * fills its rows and the rest are summed in from the others: x + 0 keeps the bits, so every
 * worker gets what one process would. Disposes the parts.
 */
export function rowsFromWorkers(parts: { start: number; features: Tensor }[], count: number, group: ProcessGroup | null): Tensor {
  try {
    if (!group || group.worldSize === 1) return t.cat(parts.map((p) => p.features), 0);
    return t.tidy(() => {
      // A worker without a part learns the width from the others (features are float32).
      const width = group.allReduce(t.tensor([parts[0]?.features.shape[1] ?? 0]), 'max').item();
      const all = t.zeros([count, width], { device: parts[0]?.features.device ?? t.computeSettings().device });
      t.noGrad(() => {
        for (const p of parts) all.narrow(0, p.start, p.features.shape[0]!).copy_(p.features);
      });
      return group.allReduce(all, 'sum');
    });
  } finally {
    for (const p of parts) p.features.dispose();
  }
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
    const labels = t.tensor(Float64Array.from(bankLabels), undefined, { dtype: 'int64', device: bank.device });
    const kk = Math.min(k, bank.shape[0]!);
    for (let start = 0; start < count; start += 500) {
      t.tidy(() => {
        const end = Math.min(count, start + 500);
        const sim = queries.slice(0, start, end).matmul(bank.T);
        const { values, indices } = sim.topk(kk, 1);
        const weights = values.div(temperature).exp();
        const votes = labels.indexSelect(0, indices.flatten()).reshape(end - start, kk);
        const scores = t.zeros([end - start, classes], { device: bank.device }).scatterAdd(1, votes, weights);
        out.set(Int32Array.from(scores.argmax(1).toArray()), start);
      });
    }
  });
  return out;
}

/** kNN top-1 (%) of the test set against the training set; with workers, each encodes and classifies its share. */
export function knnAccuracy(model: SimCLRModel, train: ImageDataset, test: ImageDataset, norm: Normalisation, { k = 200, temperature = 0.1, workers = null as ProcessGroup | null } = {}): number {
  if (!train.labels || !test.labels) throw new Error('kNN evaluation needs labeled training and test sets');
  const bank = encode(model, train, norm, { workers });
  const queries = encode(model, test, norm, { workers });
  try {
    let correct = 0;
    // In knnClassify's own slices of 500 queries, so each query gets the same bits on any worker.
    for (const start of batchStarts(test.count, 500, workers)) {
      const end = Math.min(test.count, start + 500);
      const part = queries.slice(0, start, end);
      const predicted = knnClassify({ bank, bankLabels: train.labels, queries: part, classes: classCount(train), k, temperature });
      part.dispose();
      for (let i = start; i < end; i++) if (predicted[i - start] === test.labels[i]) correct++;
    }
    if (workers && workers.worldSize > 1) [correct] = workers.sumNumbers([correct]) as [number];
    return (100 * correct) / test.count;
  } finally {
    bank.dispose();
    queries.dispose();
  }
}
