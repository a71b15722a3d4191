// The training steps, by name: what one batch does in each stage. The loop (loop.ts) owns
// everything around them; the benchmarks call these same functions, so a benchmark times
// exactly the training step.
import * as t from '../torch';
import type { Tensor } from '../torch';
import { forwardIn, type Module } from '../nn';
import type { SimCLRModel } from '../models';
import { keyedRandom, normalise, simclrView, simclrViews, type Extents, type Normalisation, type ViewKey, type ViewOptions } from '../augment';
import { averageGradients, BackwardAverager, CollectiveProbe, gatherWithGrad, overlapFromEnv, planBuckets, profileFromEnv, type BucketPlan, type ProcessGroup } from '../distributed';
import { crossEntropy, distillationLoss, ntXent } from '../losses';
import type { MomentumOptimizer as Optimizer } from '../optim';
import { NonFiniteLossError } from './control';

/** Where a step is: for the learning rate and for naming the step when its loss is not finite. */
export interface StepAt {
  stage: string;
  /** optimiser steps taken before this one */
  step: number;
  lr: number;
  /** epoch (from 0) of the batch: keys its views */
  epoch?: number;
}

/**
 * Data-parallel training: the process group, and the gradient buckets (planned on first
 * use). Each worker steps on its share of the global batch; gradients are averaged, during
 * the backward pass unless `overlap` is false (default: SIMCLR_OVERLAP=0 turns it off).
 */
export interface Workers {
  group: ProcessGroup;
  buckets?: BucketPlan;
  overlap?: boolean;
  /** the overlapped averaging's hooks and buckets (made on first use) */
  averager?: BackwardAverager;
}

export interface PretrainState {
  model: SimCLRModel;
  optimizer: Optimizer;
  views: ViewOptions;
  norm: Normalisation;
  temperature: number;
  /** Several workers: NT-Xent's negatives gathered from all, gradients averaged. */
  workers?: Workers | null;
}

export interface StepResult {
  loss: number;
  /** further figures for the metrics and the progress line */
  metrics?: Record<string, number>;
}

/** Loss value, or a NonFiniteLossError before the weights are touched. */
function finite(loss: Tensor | number, at: StepAt): number {
  const value = typeof loss === 'number' ? loss : loss.item();
  if (!Number.isFinite(value)) throw new NonFiniteLossError(at.stage, at.step);
  return value;
}

function update(optimizer: Optimizer, loss: Tensor, lr: number, workers?: Workers | null): void {
  optimizer.zeroGrad();
  if (!workers || workers.group.worldSize === 1) {
    loss.backward();
    optimizer.step(lr);
    return;
  }
  const { group } = workers;
  const params = optimizer.params.map(([, p]) => p);
  const averager = (workers.overlap ?? overlapFromEnv()) ? (workers.averager ??= new BackwardAverager(group)) : null;
  averager?.arm(params);
  try {
    loss.backward();
  } catch (e) {
    // Its collectives (synchronized batch norm, the gathered projections, gradient buckets)
    // failed: a worker stopped. Named as the other collectives' failures are.
    throw group.workerFailure('the backward pass', e);
  }
  if (averager) averager.finish();
  else averageGradients(group, params, (workers.buckets ??= planBuckets(params)));
  optimizer.step(lr);
}

/**
 * SimCLR: two views of each image, encoder + head, NT-Xent over the 2N views, one optimiser
 * step. With a key (seed, epoch, image indices), each image's views depend on the key only.
 * With workers, `counts` lists every worker's images in the global batch. Stored images of
 * different sizes come on one canvas with their extents (crops are drawn in each image's own).
 */
export function pretrainStep(s: PretrainState, images: Tensor, at: StepAt, key?: ViewKey, counts?: number[], extents: Extents = null): StepResult {
  return t.tidy(() => {
    // Only the normalised input outlives its making: the views and every augmentation stage
    // are freed before the forward pass (at 256 px, batch 64: 200 MB less at the peak).
    const x = t.tidy(() => normalise(t.cat(simclrViews(t.onComputeDevice(images), s.views, key, extents)), s.norm));
    return modelUpdate(s, x, at, counts);
  });
}

/** The model's part of a pretraining step, on views already made: [2N, C, H, W], first views then second. */
export function pretrainUpdate(s: PretrainState, views: Tensor, at: StepAt, counts?: number[]): StepResult {
  return t.tidy(() => modelUpdate(s, normalise(t.onComputeDevice(views), s.norm), at, counts));
}

/** Forward, NT-Xent, backward and the update, on normalised views. */
function modelUpdate(s: PretrainState, x: Tensor, at: StepAt, counts?: number[]): StepResult {
  return t.tidy(() => {
    const group = s.workers && s.workers.group.worldSize > 1 ? s.workers.group : null;
    const probe = group && profileFromEnv() ? new CollectiveProbe(group) : null;
    const [z1, z2] = forwardIn(s.model, x).chunk(2);
    if (!group) {
      const out = ntXent(z1!, z2!, { temperature: s.temperature });
      const loss = finite(out.loss, at);
      update(s.optimizer, out.loss, at.lr);
      return { loss, metrics: { contrastive_acc: out.accuracy.item() } };
    }
    // Every worker's projections are the negatives; this worker's loss covers its own rows.
    const n = z1!.shape[0]!;
    probe?.mark();
    const out = ntXent(z1!, z2!, { temperature: s.temperature, gather: (h) => gatherWithGrad(group, h, counts ?? Array.from({ length: group.worldSize }, () => n)) });
    const { means, weight } = globalMeans(group, n, counts, [out.loss.item(), out.accuracy.item()], at);
    probe?.mark();
    update(s.optimizer, out.loss.mul(weight), at.lr, s.workers);
    probe?.mark();
    return { loss: means[0]!, metrics: { contrastive_acc: means[1]!, ...probe?.metrics() } };
  });
}

/**
 * With workers: the global batch's means from each worker's means over its n rows (counts:
 * every worker's rows, default n each), and the weight of this worker's loss that makes the
 * averaged gradients those of the global batch's mean (its share of the batch, times the
 * workers). The first mean is the loss: not finite, every worker stops at the same step.
 */
function globalMeans(group: ProcessGroup, n: number, counts: number[] | undefined, mine: number[], at: StepAt): { means: number[]; weight: number } {
  const total = counts ? counts.reduce((a, b) => a + b, 0) : n * group.worldSize;
  const means = group.sumNumbers(mine.map((m) => m * n)).map((sum) => sum / total);
  if (!Number.isFinite(means[0])) throw new NonFiniteLossError(at.stage, at.step);
  return { means, weight: (n * group.worldSize) / total };
}

export interface ClassifierState {
  model: Module;
  optimizer: Optimizer;
  views: ViewOptions;
  norm: Normalisation;
  /** Several workers: each steps on its share of the global batch, gradients averaged. */
  workers?: Workers | null;
}

/**
 * Where this worker's rows sit: the key of their views (seed, epoch, image indices: each
 * image's view depends on it alone, not on the batch or the worker), and with workers every
 * worker's row count in the global batch.
 */
export interface BatchShare {
  key?: ViewKey;
  counts?: number[];
}

/** One crop + flip view of each image, normalised; keyed views when the share has a key. */
function classifierView(s: ClassifierState, images: Tensor, share: BatchShare, extents: Extents): Tensor {
  return normalise(simclrView(t.onComputeDevice(images), s.views, share.key ? keyedRandom(share.key, 0) : undefined, extents), s.norm);
}

/**
 * The update of a classifier stage from this worker's mean loss over its n rows. With
 * workers, the loss is weighted by the share (n of the global batch's rows) so that the
 * averaged gradients are those of the mean over the global batch, and the loss reported is
 * the global batch's.
 */
function classifierUpdate(s: ClassifierState, lossOf: (logits: Tensor) => Tensor, logits: Tensor, at: StepAt, counts?: number[]): StepResult {
  const group = s.workers && s.workers.group.worldSize > 1 ? s.workers.group : null;
  if (!group) {
    const l = lossOf(logits);
    const loss = finite(l, at);
    update(s.optimizer, l, at.lr);
    return { loss };
  }
  const mean = lossOf(logits);
  const { means, weight } = globalMeans(group, logits.shape[0]!, counts, [mean.item()], at);
  update(s.optimizer, mean.mul(weight), at.lr, s.workers);
  return { loss: means[0]! };
}

/** Fine-tuning and the baseline: one crop + flip view, cross-entropy against the labels. */
export function classifierStep(s: ClassifierState, images: Tensor, labels: Tensor, at: StepAt, extents: Extents = null, share: BatchShare = {}): StepResult {
  return t.tidy(() => {
    const logits = forwardIn(s.model, classifierView(s, images, share, extents));
    return classifierUpdate(s, (z) => crossEntropy(z, t.onComputeDevice(labels)), logits, at, share.counts);
  });
}

export interface DistillState extends ClassifierState {
  /** frozen, in eval mode */
  teacher: Module;
  temperature: number;
}

/**
 * Distillation: the student learns the teacher's softmax on the same view. No labels: the
 * data set's own labels may cover every image, and only the labeled subset may be used.
 */
export function distillStep(s: DistillState, images: Tensor, at: StepAt, extents: Extents = null, share: BatchShare = {}): StepResult {
  return t.tidy(() => {
    const x = classifierView(s, images, share, extents);
    const logits = forwardIn(s.model, x);
    const teacher = t.noGrad(() => forwardIn(s.teacher, x));
    return classifierUpdate(s, (z) => distillationLoss(z, teacher, { temperature: s.temperature }), logits, at, share.counts);
  });
}
