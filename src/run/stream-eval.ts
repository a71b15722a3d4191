// Evaluation on an image folder without caching it: the test images are decoded a chunk at
// a time (each as predict decodes it: shorter side to the run's size, centre square) and
// every model asked for sees each chunk once.
import * as t from '../torch';
import { evalInput } from '../augment';
import { hostTensor, listImages, streamImages, undecodableError } from '../data';
import { forwardIn, holdForInference, type Module } from '../nn';
import type { SimCLRModel } from '../models';
import { batchStarts, rowsFromWorkers, type Normalisation } from '../train';
import { PlanError } from './errors';
import { isBuiltInSpec } from './data';
import type { ProcessGroup } from '../distributed';

export interface StreamEvalOptions {
  size: number;
  channels: 1 | 3;
  norm: Normalisation;
  /** classifiers to score, by name */
  classifiers: { name: string; model: Module }[];
  /** the pretrained model whose encoder features (not normalised) to collect, for kNN and linear evaluation */
  encoder?: SimCLRModel;
  skipBad?: boolean;
  chunk?: number;
  /** Workers: each scores its share of the chunks; every worker returns the whole result. */
  workers?: ProcessGroup | null;
}

export interface StreamEvalResult {
  count: number;
  /** the test images' labels, in the order of `features` */
  labels: Int32Array;
  skipped: string[];
  stages: { stage: string; top1: number; top5: number }[];
  /** encoder features [count, d] (the caller disposes them), when an encoder was given */
  features: t.Tensor | null;
}

/** True for a --test-data that names a folder (not one of the built-in data sets). */
export const isFolderSpec = (spec: string): boolean => !isBuiltInSpec(spec);

/**
 * Scores every classifier (and collects encoder features) on a folder, a chunk at a time.
 * With workers, each decodes and scores every worker-th chunk (so each image is in the same
 * batch as on one process), then the hits, the images that failed and the features are
 * summed over workers: every worker returns the one-process result.
 */
export async function evaluateFolderStream(dir: string, o: StreamEvalOptions): Promise<StreamEvalResult> {
  const list = listImages(dir);
  if (list.classes.length === 0) throw new PlanError(`${dir}: no class subfolders, so no labels to evaluate against`);
  const workers = o.workers && o.workers.worldSize > 1 ? o.workers : null;
  const chunk = o.chunk ?? 250;
  // This worker's chunks: every worker-th from its rank, as evaluateClassifier shares batches.
  const mine = batchStarts(list.files.length, chunk, workers).map((start) => start / chunk);
  // The files of this worker's chunks, one after another: streamImages cuts them into the same chunks.
  const files = mine.flatMap((c) => list.files.slice(c * chunk, (c + 1) * chunk));
  const globalPosition = (p: number): number => mine[Math.floor(p / chunk)]! * chunk + (p % chunk);
  // Each model folded once for the whole pass (nn/inference.ts).
  const releases = [...o.classifiers.map((c) => holdForInference(c.model)), ...(o.encoder ? [holdForInference(o.encoder)] : [])];
  const hits = o.classifiers.map(() => ({ top1: 0, top5: 0 }));
  const failed = new Uint8Array(list.files.length);
  const parts: { positions: number[]; features: t.Tensor }[] = [];
  try {
    for await (const got of streamImages(files, { size: o.size, channels: o.channels, chunk, square: true })) {
      if (got.failed.length > 0 && !o.skipBad) {
        const [first] = got.failed;
        throw undecodableError(files[first!.position]!, first!.error, got.failed.length);
      }
      for (const f of got.failed) failed[globalPosition(f.position)] = 1;
      if (got.positions.length === 0) continue;
      const positions = got.positions.map(globalPosition);
      const chunkLabels = positions.map((p) => list.labels[p]!);
      t.noGrad(() =>
        t.tidy(() => {
          const x = evalInput(hostTensor(got.batch), o.size, o.norm, got.batch.extents);
          const y = t.tensor(Float64Array.from(chunkLabels), undefined, { dtype: 'int64', device: x.device }).unsqueeze(1);
          o.classifiers.forEach((c, k) => {
            const logits = forwardIn(c.model, x);
            const top = logits.topk(Math.min(5, logits.shape[1]!), 1).indices.eq(y);
            hits[k]!.top1 += top.slice(1, 0, 1).sum().item();
            hits[k]!.top5 += top.sum().item();
          });
          if (o.encoder) parts.push({ positions, features: t.keep(forwardIn(o.encoder.encoder, x)) });
        }),
      );
    }
    if (workers) {
      const sums = workers.sumNumbers(hits.flatMap((h) => [h.top1, h.top5]));
      hits.forEach((h, k) => Object.assign(h, { top1: sums[2 * k]!, top5: sums[2 * k + 1]! }));
      // Each file is one worker's: the sum marks the images that failed anywhere.
      t.tidy(() => failed.set(workers.allReduce(t.tensor(Float32Array.from(failed), [failed.length]), 'sum').toArray()));
    }
  } catch (e) {
    for (const p of parts) p.features.dispose();
    throw e;
  } finally {
    for (const release of releases) release();
  }
  // The images decoded, in folder order: rows of the features and their labels.
  const row = new Int32Array(list.files.length).fill(-1);
  const labels: number[] = [];
  const skipped: string[] = [];
  list.files.forEach((file, p) => {
    if (failed[p]) skipped.push(file);
    else {
      row[p] = labels.length;
      labels.push(list.labels[p]!);
    }
  });
  const count = labels.length;
  if (count === 0) {
    for (const p of parts) p.features.dispose();
    throw new Error(`${dir}: none of the images could be decoded`);
  }
  const features = o.encoder ? gatherFeatures(parts, row, count, workers) : null;
  return {
    count,
    labels: Int32Array.from(labels),
    skipped,
    stages: o.classifiers.map((c, k) => ({ stage: c.name, top1: (100 * hits[k]!.top1) / count, top5: (100 * hits[k]!.top5) / count })),
    features,
  };
}

/** Every decoded image's features in folder order, [count, d] (disposes the parts); a chunk's decoded images take consecutive rows. */
function gatherFeatures(parts: { positions: number[]; features: t.Tensor }[], row: Int32Array, count: number, workers: ProcessGroup | null): t.Tensor {
  return rowsFromWorkers(
    parts.map((p) => ({ start: row[p.positions[0]!]!, features: p.features })),
    count,
    workers,
  );
}
