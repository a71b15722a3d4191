// Runs modules under the process's compute settings (torch/compute.ts): weights and
// batches on the settings' device and channels-last, forward passes under bfloat16 autocast, outputs back in float32
// so that losses, softmax and optimiser state stay in float32.
import { autocast, computeSettings, onComputeDevice, type ComputeSettings, type Tensor } from '../torch';
import type { Module } from './module';

/** Moves a model to the settings' device and lays out its convolution weights (idempotent, in place). */
export function prepareModel<M extends Module>(model: M, s: ComputeSettings = computeSettings()): M {
  return model.to({ device: s.device, memoryFormat: s.channelsLast ? 'channels_last' : 'contiguous' });
}

/** The batch on the settings' device, in their memory format (image batches only). */
export function layoutBatch(x: Tensor, s: ComputeSettings = computeSettings()): Tensor {
  const here = onComputeDevice(x, s);
  return s.channelsLast && here.shape.length === 4 ? here.contiguous('channels_last') : here;
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
  return inPrecision(() => model.forward(input), s, input.device);
}
