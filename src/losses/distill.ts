// Distillation (SimCLRv2's third stage) and the labeled cross-entropy it can be mixed with.
import * as t from '../torch';
import type { Tensor } from '../torch';

export interface DistillOptions {
  /** Softmax temperature for both teacher and student. Default 1 (the paper's main results). */
  temperature?: number;
}

/** -sum_y softmax(teacher/T) log softmax(student/T), averaged over the batch; the teacher gets no gradient. */
export function distillationLoss(student: Tensor, teacher: Tensor, o: DistillOptions = {}): Tensor {
  return t.tidy(() => {
    const temperature = o.temperature ?? 1;
    if (!(temperature > 0)) throw new Error(`distillationLoss: temperature must be positive, got ${temperature}`);
    const target = teacher.detach().div(temperature).softmax(1);
    return target.mul(student.div(temperature).logSoftmax(1)).sum(1).mean().neg();
  });
}

export interface MixedDistillOptions extends DistillOptions {
  /** Weight of the distillation term: L = (1 - alpha) * L_labeled + alpha * L_distill. Default 1. */
  alpha?: number;
  labelSmoothing?: number;
}

/** (1 - alpha) x cross-entropy on the labels + alpha x distillation. */
export function mixedDistillationLoss(student: Tensor, teacher: Tensor, labels: Tensor, o: MixedDistillOptions = {}): Tensor {
  return t.tidy(() => {
    const alpha = o.alpha ?? 1;
    if (!(alpha >= 0 && alpha <= 1)) throw new Error(`mixedDistillationLoss: alpha must be in [0, 1], got ${alpha}`);
    const labeled = crossEntropy(student, labels, { labelSmoothing: o.labelSmoothing });
    return labeled.mul(1 - alpha).add(distillationLoss(student, teacher, o).mul(alpha));
  });
}

/** Cross-entropy with label smoothing off by default. */
export function crossEntropy(logits: Tensor, labels: Tensor, o: { labelSmoothing?: number } = {}): Tensor {
  return t.F.crossEntropy(logits, labels, { labelSmoothing: o.labelSmoothing ?? 0 });
}
