// Stages 2 and 3, and the baseline: training a classifier with SGD on crop + flip views,
// against labels (fine-tuning, supervised baseline) or a frozen teacher's outputs
// (distillation); and its top-1 / top-5 evaluation.
import * as t from '../torch';
import { holdForInference, inference, prepareModel, type Module } from '../nn';
import { SGD, warmupCosine } from '../optim';
import { evalInput, fineTuneViewOptions, type Normalisation, type ViewOptions } from '../augment';
import { BatchLoader, imageBatch, range, shareOf, type Batch, type ImageDataset, type LoaderOptions } from '../data';
import { broadcastWeights, useSyncBatchNorm, type BatchNormScope, type ProcessGroup } from '../distributed';
import type { StopSignal } from './control';
import type { RunFolder } from './run-folder';
import { trainLoop } from './loop';
import { classifierStep, distillStep, type BatchShare, type StepAt } from './steps';

export interface ClassifierTrainConfig {
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
  /** Crop area range of the crop + flip views. */
  cropScale: [number, number];
  seed: number;
  dropLast: boolean;
  /** Distillation: softmax temperature of teacher and student. */
  temperature: number;
  /** Resampling of the crops. */
  interpolation: 'bicubic' | 'bilinear';
  /** Whole-pixel crop boxes, as torchvision draws them. */
  pixelAlignedCrops: boolean;
  /** With workers: batch norm over the global batch or each worker's share. */
  batchNorm: BatchNormScope;
}

export function defaultClassifierConfig(overrides: Partial<ClassifierTrainConfig> = {}): ClassifierTrainConfig {
  return { epochs: 30, batchSize: 256, lr: 0.05, momentum: 0.9, weightDecay: 0, nesterov: true, cropScale: [0.08, 1], seed: 0, dropLast: false, temperature: 1, interpolation: 'bicubic', pixelAlignedCrops: false, batchNorm: 'global', ...overrides };
}

export interface ClassifierRun {
  stage: string;
  model: Module;
  data: ImageDataset;
  /** images to train on (a labeled subset); all when omitted */
  indices?: number[];
  norm: Normalisation;
  run: RunFolder;
  config: ClassifierTrainConfig;
  /** A frozen teacher: the student learns its softmax on the same views (distillation). */
  teacher?: Module;
  resume?: boolean;
  stop?: StopSignal;
  /** Saved with each checkpoint so the model can be rebuilt (its architecture). */
  arch?: unknown;
  /** Saved with each checkpoint: the stage's settings as planned (to check a resume against) and the compute settings. */
  settings?: unknown;
  compute?: unknown;
  /** After each epoch's checkpoint (the validation monitor); with workers, on every worker (it may share its work). */
  afterEpoch?: (epoch: number, step: number) => void;
  /**
   * Data-parallel workers: the batch size is the global batch, each worker takes its share;
   * batch norm is synchronized and gradients averaged over workers; rank 0 alone writes.
   */
  workers?: ProcessGroup | null;
  /** With workers: compare the weights across workers after every step (a checksum). */
  checkWeights?: boolean;
}

/**
 * The classifier stages' batches on workers: each worker takes its contiguous share of every
 * global batch. A batch with fewer images than workers (a short last batch) goes whole to
 * each worker instead, as copies: the batch norm statistics over the copies and their mean
 * loss are the batch's own, so the update is still one process's (only batch norm's
 * running variance, corrected by n / (n - 1), counts the copies). No worker gets an empty
 * share, which libtorch's channels-last convolution cannot take.
 */
class SharedBatches extends BatchLoader {
  constructor(
    data: ImageDataset,
    options: LoaderOptions,
    private readonly workers: { rank: number; worldSize: number },
  ) {
    super(data, options);
  }

  override positions(epoch: number, k: number): { indices: number[]; counts: number[] } {
    const { indices } = super.positions(epoch, k);
    const { worldSize } = this.workers;
    if (indices.length < worldSize) return { indices, counts: Array.from({ length: worldSize }, () => indices.length) };
    return shareOf(indices, this.workers);
  }
}

/** Trains; checkpoints as `stage` after every epoch. Returns whether it ran to the end. */
export async function trainClassifier(r: ClassifierRun): Promise<boolean> {
  const c = r.config;
  prepareModel(r.model);
  // The frozen teacher evaluates every step: batch norm folded once for the whole stage.
  const releaseTeacher = r.teacher ? holdForInference(r.teacher) : null;
  if (!r.teacher && !r.data.labels) throw new Error(`${r.stage}: ${r.data.source} has no labels`);
  const group = r.workers && r.workers.worldSize > 1 ? r.workers : null;
  const batchSize = Math.min(c.batchSize, (r.indices ?? r.data.ids).length);
  if (group) {
    if (batchSize < group.worldSize) throw new Error(`${r.stage}: the batch (${batchSize}) must hold at least one image per worker (${group.worldSize} workers)`);
    // Every worker starts from rank 0's weights; batch norm (encoder and head) sees the global
    // batch unless told otherwise. The teacher is frozen in eval mode: its batch norm uses its
    // running statistics.
    broadcastWeights(group, r.model);
    if (c.batchNorm !== 'local') useSyncBatchNorm(r.model, group);
  }
  const options = { batchSize, seed: c.seed, dropLast: c.dropLast, indices: r.indices };
  const loader = group ? new SharedBatches(r.data, options, group) : new BatchLoader(r.data, options);
  const optimizer = new SGD(r.model.namedParameters(), { lr: c.lr, momentum: c.momentum, weightDecay: c.weightDecay, nesterov: c.nesterov });
  const lrAt = warmupCosine({ peak: c.lr, warmupSteps: 0, totalSteps: c.epochs * loader.batchesPerEpoch() });
  const views: ViewOptions = { ...fineTuneViewOptions(r.data.size), crop: { scale: c.cropScale, ratio: [3 / 4, 4 / 3], pixelAligned: c.pixelAlignedCrops }, interpolation: c.interpolation };
  const state = { model: r.model, optimizer, views, norm: r.norm, workers: group ? { group } : null };
  const teacher = r.teacher;
  // Views keyed by (seed, epoch, image): an image's view is the same on any worker, and on one process.
  const share = (batch: Batch, at: StepAt): BatchShare => ({ key: { seed: c.seed, epoch: at.epoch ?? 0, indices: batch.indices }, counts: batch.counts });
  try {
    return await trainLoop({
      stage: r.stage,
      run: r.run,
      model: r.model,
      optimizer,
      loader,
      epochs: c.epochs,
      lrAt,
      config: { ...c, arch: r.arch, settings: r.settings, compute: r.compute },
      resume: r.resume,
      stop: r.stop,
      afterEpoch: r.afterEpoch,
      afterEpochOnEveryWorker: true,
      workers: group,
      checkWeights: r.checkWeights,
      localStatistics: c.batchNorm === 'local',
      step: teacher
        ? (batch, at) => distillStep({ ...state, teacher, temperature: c.temperature }, batch.images, at, batch.extents, share(batch, at))
        : (batch, at) => classifierStep(state, batch.images, batch.labels!, at, batch.extents, share(batch, at)),
    });
  } finally {
    optimizer.dispose();
    loader.dispose();
    releaseTeacher?.();
    if (group) useSyncBatchNorm(r.model, null);
  }
}

/**
 * The batches of `count` images (of `batch` each) that this worker takes: every worker-th,
 * from its rank. Each image is then in the same batch as on one process, so its outputs,
 * and the figures summed from them, are the same to the bit.
 */
export function batchStarts(count: number, batch: number, workers?: ProcessGroup | null): number[] {
  const every = workers ? workers.worldSize : 1;
  const out: number[] = [];
  for (let start = (workers?.rank ?? 0) * batch; start < count; start += every * batch) out.push(start);
  return out;
}

/**
 * Top-1 and top-5 accuracy (%) on a labeled set: centre crop (whole image at 32px or less),
 * eval mode. With workers, each evaluates its share of the batches and the hits are summed:
 * every worker returns the figures of one process.
 */
export function evaluateClassifier(model: Module, ds: ImageDataset, norm: Normalisation, { batch = 500, indices, workers }: { batch?: number; indices?: readonly number[]; workers?: ProcessGroup | null } = {}): { top1: number; top5: number } {
  if (!ds.labels) throw new Error(`${ds.source} has no labels to evaluate against`);
  const count = indices ? indices.length : ds.count;
  if (count === 0) throw new Error(`${ds.source}: no images to evaluate on`);
  const group = workers && workers.worldSize > 1 ? workers : null;
  let top1 = 0;
  let top5 = 0;
  inference(model, (forward) => {
    for (const start of batchStarts(count, batch, group)) {
      t.tidy(() => {
        const end = Math.min(count, start + batch);
        // All images, or a chosen set (the validation split), a batch at a time.
        const part = indices ? indices.slice(start, end) : range(start, end);
        const { images, extents } = imageBatch(ds, part);
        const labelValues = Float64Array.from(part, (i) => ds.labels![i]!);
        const logits = forward(evalInput(images, ds.size, norm, extents));
        const labels = t.tensor(labelValues, undefined, { dtype: 'int64', device: logits.device }).unsqueeze(1);
        const hits = logits.topk(Math.min(5, logits.shape[1]!), 1).indices.eq(labels);
        top1 += hits.slice(1, 0, 1).sum().item();
        top5 += hits.sum().item();
      });
    }
  });
  if (group) [top1, top5] = group.sumNumbers([top1, top5]) as [number, number];
  return { top1: (100 * top1) / count, top5: (100 * top5) / count };
}

/** Each image's top-1 class and its softmax probability (centre crop, eval mode), in data set order. */
export function classifierPredictions(model: Module, ds: ImageDataset, norm: Normalisation, { batch = 500 } = {}): { predicted: Int32Array; probability: Float32Array } {
  const predicted = new Int32Array(ds.count);
  const probability = new Float32Array(ds.count);
  inference(model, (forward) => {
    for (let start = 0; start < ds.count; start += batch) {
      t.tidy(() => {
        const end = Math.min(ds.count, start + batch);
        const { images, extents } = imageBatch(ds, range(start, end));
        const best = forward(evalInput(images, ds.size, norm, extents)).to('float32').softmax(1).topk(1, 1);
        predicted.set(Int32Array.from(best.indices.toArray()), start);
        probability.set(Float32Array.from(best.values.toArray()), start);
      });
    }
  });
  return { predicted, probability };
}
