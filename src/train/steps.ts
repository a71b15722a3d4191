// The training steps, by name: what one batch does in each stage. The loop (loop.ts) owns
// everything around them; the benchmarks call these same functions, so a benchmark times
// exactly the training step.
import * as t from '../torch';
import type { Tensor } from '../torch';
import { forwardIn, type Module } from '../nn';
import type { SimCLRModel } from '../models';
import { normalise, simclrView, simclrViews, type Extents, type Normalisation, type ViewKey, type ViewOptions } from '../augment';
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
  return t.tidy(() => pretrainUpdate(s, t.cat(simclrViews(images, s.views, key, extents)), at, counts));
}

/** The model's part of a pretraining step, on views already made: [2N, C, H, W], first views then second. */
export function pretrainUpdate(s: PretrainState, views: Tensor, at: StepAt, counts?: number[]): StepResult {
  return t.tidy(() => {
    const group = s.workers && s.workers.group.worldSize > 1 ? s.workers.group : null;
    const probe = group && profileFromEnv() ? new CollectiveProbe(group) : null;
    const x = normalise(views, s.norm);
    const [z1, z2] = forwardIn(s.model, x).chunk(2);
    if (!group) {
      const out = ntXent(z1!, z2!, { temperature: s.temperature });
      const loss = finite(out.loss, at);
      update(s.optimizer, out.loss, at.lr);
      return { loss, metrics: { contrastive_acc: out.accuracy.item() } };
    }
    // Every worker's projections are the negatives; this worker's loss covers its own rows.
    // Weighted by its share, the workers' averaged gradients are the global batch's.
    const n = z1!.shape[0]!;
    const sizes = counts ?? Array.from({ length: group.worldSize }, () => n);
    const total = sizes.reduce((a, b) => a + b, 0);
    probe?.mark();
    const out = ntXent(z1!, z2!, { temperature: s.temperature, gather: (h) => gatherWithGrad(group, h, sizes) });
    const [lossSum, accSum] = group.sumNumbers([out.loss.item() * n, out.accuracy.item() * n]) as [number, number];
    probe?.mark();
    // As a number: a float32 tensor would round the workers' float64 sum.
    const loss = finite(lossSum / total, at);
    update(s.optimizer, out.loss.mul((n * group.worldSize) / total), at.lr, s.workers);
    probe?.mark();
    return { loss, metrics: { contrastive_acc: accSum / total, ...probe?.metrics() } };
  });
}

export interface ClassifierState {
  model: Module;
  optimizer: Optimizer;
  views: ViewOptions;
  norm: Normalisation;
}

/** Fine-tuning and the baseline: one crop + flip view, cross-entropy against the labels. */
export function classifierStep(s: ClassifierState, images: Tensor, labels: Tensor, at: StepAt, extents: Extents = null): StepResult {
  return t.tidy(() => {
    const x = normalise(simclrView(images, s.views, undefined, extents), s.norm);
    const l = crossEntropy(forwardIn(s.model, x), labels);
    const loss = finite(l, at);
    update(s.optimizer, l, at.lr);
    return { loss };
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
export function distillStep(s: DistillState, images: Tensor, at: StepAt, extents: Extents = null): StepResult {
  return t.tidy(() => {
    const x = normalise(simclrView(images, s.views, undefined, extents), s.norm);
    const logits = forwardIn(s.model, x);
    const l = distillationLoss(logits, t.noGrad(() => forwardIn(s.teacher, x)), { temperature: s.temperature });
    const loss = finite(l, at);
    update(s.optimizer, l, at.lr);
    return { loss };
  });
}
