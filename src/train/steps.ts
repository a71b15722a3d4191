// The training steps, by name: what one batch does in each stage. The loop (loop.ts) owns
// everything around them; the benchmarks call these same functions, so a benchmark times
// exactly the training step.
import * as t from '../torch';
import type { Tensor } from '../torch';
import { forwardIn, type Module } from '../nn';
import type { SimCLRModel } from '../models';
import { normalise, simclrView, simclrViews, type Normalisation, type ViewOptions } from '../augment';
import { crossEntropy, distillationLoss, ntXent } from '../losses';
import type { MomentumOptimizer as Optimizer } from '../optim';
import { NonFiniteLossError } from './control';

/** Where a step is: for the learning rate and for naming the step when its loss is not finite. */
export interface StepAt {
  stage: string;
  /** optimiser steps taken before this one */
  step: number;
  lr: number;
}

export interface PretrainState {
  model: SimCLRModel;
  optimizer: Optimizer;
  views: ViewOptions;
  norm: Normalisation;
  temperature: number;
}

export interface StepResult {
  loss: number;
  /** further figures for the metrics and the progress line */
  metrics?: Record<string, number>;
}

/** Loss value, or a NonFiniteLossError before the weights are touched. */
function finite(loss: Tensor, at: StepAt): number {
  const value = loss.item();
  if (!Number.isFinite(value)) throw new NonFiniteLossError(at.stage, at.step);
  return value;
}

function update(optimizer: Optimizer, loss: Tensor, lr: number): void {
  optimizer.zeroGrad();
  loss.backward();
  optimizer.step(lr);
}

/** SimCLR: two views of each image, encoder + head, NT-Xent over the 2N views, one optimiser step. */
export function pretrainStep(s: PretrainState, images: Tensor, at: StepAt): StepResult {
  return t.tidy(() => pretrainUpdate(s, t.cat(simclrViews(images, s.views)), at));
}

/** The model's part of a pretraining step, on views already made: [2N, C, H, W], first views then second. */
export function pretrainUpdate(s: PretrainState, views: Tensor, at: StepAt): StepResult {
  return t.tidy(() => {
    const x = normalise(views, s.norm);
    const [z1, z2] = forwardIn(s.model, x).chunk(2);
    const out = ntXent(z1!, z2!, { temperature: s.temperature });
    const loss = finite(out.loss, at);
    update(s.optimizer, out.loss, at.lr);
    return { loss, metrics: { contrastive_acc: out.accuracy.item() } };
  });
}

export interface ClassifierState {
  model: Module;
  optimizer: Optimizer;
  views: ViewOptions;
  norm: Normalisation;
}

/** Fine-tuning and the baseline: one crop + flip view, cross-entropy against the labels. */
export function classifierStep(s: ClassifierState, images: Tensor, labels: Tensor, at: StepAt): StepResult {
  return t.tidy(() => {
    const x = normalise(simclrView(images, s.views), s.norm);
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
export function distillStep(s: DistillState, images: Tensor, at: StepAt): StepResult {
  return t.tidy(() => {
    const x = normalise(simclrView(images, s.views), s.norm);
    const logits = forwardIn(s.model, x);
    const l = distillationLoss(logits, t.noGrad(() => forwardIn(s.teacher, x)), { temperature: s.temperature });
    const loss = finite(l, at);
    update(s.optimizer, l, at.lr);
    return { loss };
  });
}
