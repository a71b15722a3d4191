// The one evaluation forward pass that eval, predict, kNN, embedding, suggest-labels, the
// distillation teacher and the server go through: eval mode (batch norm from its running
// statistics, folded into the convolutions: fold.ts), no autograd recording, the process's
// layout and precision (forwardIn); the model's mode is put back as it was.
import * as t from '../torch';
import type { Tensor } from '../torch';
import type { Module } from './module';
import { forwardIn, prepareModel } from './compute';
import { foldForInference } from './fold';

/**
 * Readies a model that will only be evaluated for a while (a frozen teacher, a served
 * model, a stream of batches): laid out, in eval mode, its batch norms folded once.
 * Returns the function that gives the folded weights back (and training mode, if it had it).
 */
export function holdForInference(model: Module): () => void {
  const wasTraining = model.training;
  prepareModel(model).eval();
  const unfold = foldForInference(model);
  return () => {
    unfold();
    if (wasTraining) model.train();
  };
}

/** run() with the model's evaluation forward (folded once for the call, or as held already). */
export function inference<T>(model: Module, run: (forward: (x: Tensor) => Tensor) => T): T {
  const release = holdForInference(model);
  try {
    return t.noGrad(() => run((x) => forwardIn(model, x)));
  } finally {
    release();
  }
}
