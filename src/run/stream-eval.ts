// Evaluation on an image folder without caching it: the test images are decoded a chunk at
// a time (each as predict decodes it: shorter side to the run's size, centre square) and
// every model asked for sees each chunk once.
import * as t from '../torch';
import { evalInput } from '../augment';
import { hostTensor, listImages, streamImages, undecodableError } from '../data';
import { forwardIn, prepareModel, type Module } from '../nn';
import type { SimCLRModel } from '../models';
import type { Normalisation } from '../train';
import { PlanError } from './errors';

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
export const isFolderSpec = (spec: string): boolean => !/^(fashion-mnist|mnist|cifar10-bin|cifar100-bin)(:|$)/.test(spec);

export async function evaluateFolderStream(dir: string, o: StreamEvalOptions): Promise<StreamEvalResult> {
  const list = listImages(dir);
  if (list.classes.length === 0) throw new PlanError(`${dir}: no class subfolders, so no labels to evaluate against`);
  for (const c of o.classifiers) prepareModel(c.model).eval();
  if (o.encoder) prepareModel(o.encoder).eval();
  const hits = o.classifiers.map(() => ({ top1: 0, top5: 0 }));
  const labels: number[] = [];
  const skipped: string[] = [];
  const parts: t.Tensor[] = [];
  try {
    for await (const chunk of streamImages(list.files, { size: o.size, channels: o.channels, chunk: o.chunk ?? 250, square: true })) {
      if (chunk.failed.length > 0 && !o.skipBad) {
        const [first] = chunk.failed;
        throw undecodableError(list.files[first!.position]!, first!.error, chunk.failed.length);
      }
      skipped.push(...chunk.failed.map((f) => list.files[f.position]!));
      if (chunk.positions.length === 0) continue;
      const chunkLabels = chunk.positions.map((p) => list.labels[p]!);
      labels.push(...chunkLabels);
      t.noGrad(() =>
        t.tidy(() => {
          const x = evalInput(hostTensor(chunk.batch), o.size, o.norm, chunk.batch.extents);
          const y = t.tensor(Float64Array.from(chunkLabels), undefined, { dtype: 'int64' }).unsqueeze(1);
          o.classifiers.forEach((c, k) => {
            const logits = forwardIn(c.model, x);
            const top = logits.topk(Math.min(5, logits.shape[1]!), 1).indices.eq(y);
            hits[k]!.top1 += top.slice(1, 0, 1).sum().item();
            hits[k]!.top5 += top.sum().item();
          });
          if (o.encoder) parts.push(t.keep(forwardIn(o.encoder.encoder, x)));
        }),
      );
    }
  } catch (e) {
    for (const p of parts) p.dispose();
    throw e;
  } finally {
    for (const c of o.classifiers) c.model.train();
  }
  const count = labels.length;
  if (count === 0) throw new Error(`${dir}: none of the images could be decoded`);
  const features = parts.length ? t.cat(parts, 0) : null;
  for (const p of parts) p.dispose();
  return {
    count,
    labels: Int32Array.from(labels),
    skipped,
    stages: o.classifiers.map((c, k) => ({ stage: c.name, top1: (100 * hits[k]!.top1) / count, top5: (100 * hits[k]!.top5) / count })),
    features,
  };
}
