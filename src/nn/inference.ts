// The one evaluation forward pass that eval, predict, kNN, embedding and suggest-labels go
// through: eval mode (batch norm from its running statistics), no autograd recording, the
// process's layout and precision (forwardIn); the model's mode is put back as it was.
import * as t from '../torch';
import type { Tensor } from '../torch';
import type { Module } from './module';
import { forwardIn, prepareModel } from './compute';

export function inference<T>(model: Module, run: (forward: (x: Tensor) => Tensor) => T): T {
  const wasTraining = model.training;
  prepareModel(model).eval();
  try {
    return t.noGrad(() => run((x) => forwardIn(model, x)));
  } finally {
    if (wasTraining) model.train();
  }
}
