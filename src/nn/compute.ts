// Runs modules under the process's compute settings (torch/compute.ts): weights and
// batches channels-last, forward passes under bfloat16 autocast, outputs back in float32
// so that losses, softmax and optimiser state stay in float32.
import { autocast, computeSettings, type ComputeSettings, type Tensor } from '../torch';
import type { Module } from './module';

/** Lays out a model's convolution weights for the settings (idempotent, in place). */
export function prepareModel<M extends Module>(model: M, s: ComputeSettings = computeSettings()): M {
  return model.to({ memoryFormat: s.channelsLast ? 'channels_last' : 'contiguous' });
}

/** The batch in the settings' memory format (image batches only). */
export function layoutBatch(x: Tensor, s: ComputeSettings = computeSettings()): Tensor {
  return s.channelsLast && x.shape.length === 4 ? x.contiguous('channels_last') : x;
}

/** fn's output under the settings' precision (autocast on the device fn computes on), returned in float32. */
export function inPrecision(fn: () => Tensor, s: ComputeSettings = computeSettings(), device = 'cpu'): Tensor {
  if (s.precision === 'fp32') return fn();
  const out = autocast(fn, { deviceType: device.startsWith('cuda') ? 'cuda' : 'cpu', dtype: 'bfloat16' });
  return out.dtype === 'float32' ? out : out.to('float32');
}

/** model(x) under the settings: the batch laid out, the forward pass in their precision, float32 out. */
export function forwardIn(model: { forward(x: Tensor): Tensor }, x: Tensor, s: ComputeSettings = computeSettings()): Tensor {
  const input = layoutBatch(x, s);
  return inPrecision(() => model.forward(input), s, x.device);
}
