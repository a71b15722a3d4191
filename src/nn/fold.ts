// Batch norm folded into the layer before it, for inference: BN(conv(x)) = conv'(x) with
// w' = w * s and b' = beta + (b - mean) * s per output channel, s = gamma / sqrt(var + eps).
// The evaluation forward (inference.ts) and the exports (ONNX, torchvision) both fold here.
import * as t from '../torch';
import type { Tensor } from '../torch';
import { computeSettings, type ComputeSettings } from '../torch';
import { BatchNorm, Conv2d, Linear } from './layers';
import type { Module } from './module';

/** A layer whose output a batch norm normalises directly (nothing in between). */
export type Foldable = Conv2d | Linear;

/** Modules that apply a batch norm right after a convolution or linear layer name those pairs. */
export interface FoldPairs {
  batchNormPairs(): [Foldable, BatchNorm][];
}

function hasPairs(m: Module): m is Module & FoldPairs {
  return typeof (m as Partial<FoldPairs>).batchNormPairs === 'function';
}

/** The folded weight and bias of `layer` followed by `bn` in eval mode (float32, new tensors). */
export function foldedAffine(layer: Foldable, bn: BatchNorm): { weight: Tensor; bias: Tensor } {
  const out = layer.weight.shape[0]!;
  if (bn.numFeatures !== out) throw new Error(`batch norm of ${bn.numFeatures} features after a layer of ${out} outputs`);
  return t.noGrad(() =>
    t.tidy(() => {
      const f32 = (x: Tensor): Tensor => x.to('float32');
      const scale = bn.weight ? f32(bn.weight).mul(f32(bn.runningVar).add(bn.eps).rsqrt()) : f32(bn.runningVar).add(bn.eps).rsqrt();
      const shape = [out, ...layer.weight.shape.slice(1).map(() => 1)];
      const weight = f32(layer.weight).mul(scale.view(...shape));
      const shift = (layer.bias ? f32(layer.bias) : t.zeros([out], { device: layer.weight.device })).sub(f32(bn.runningMean)).mul(scale);
      const bias = bn.bias ? shift.add(f32(bn.bias)) : shift;
      return { weight, bias };
    }),
  );
}

/** Every (layer, batch norm) pair a model declares, in module order. */
export function batchNormPairs(model: Module): [Foldable, BatchNorm][] {
  return model.namedModules().flatMap(([, m]) => (hasPairs(m) ? m.batchNormPairs() : []));
}

/** Models folded now, with the count of holders (nested inference() calls share one fold). */
const holders = new WeakMap<Module, number>();

export function isFolded(model: Module): boolean {
  return (holders.get(model) ?? 0) > 0;
}

/**
 * Gives the model inference weights: each declared batch norm folded into its layer (the
 * norm then passes its input through in eval mode), and in bfloat16 every convolution and
 * linear layer's weights cast once, laid out as the settings say. Training mode still uses
 * the real weights. Returns the function that drops them; a model folded already is shared.
 */
export function foldForInference(model: Module, s: ComputeSettings = computeSettings()): () => void {
  const held = holders.get(model) ?? 0;
  holders.set(model, held + 1);
  if (held === 0) applyFold(model, s);
  let dropped = false;
  return () => {
    if (dropped) return;
    dropped = true;
    const left = (holders.get(model) ?? 1) - 1;
    holders.set(model, left);
    if (left === 0) dropFold(model);
  };
}

function applyFold(model: Module, s: ComputeSettings): void {
  const dtype = s.precision === 'bf16' ? 'bfloat16' : 'float32';
  const place = (x: Tensor): Tensor => {
    const typed = x.dtype === dtype ? x : x.to(dtype);
    const laid = s.channelsLast && typed.shape.length === 4 ? typed.contiguous('channels_last') : typed;
    if (laid !== typed && typed !== x) typed.dispose();
    return t.keep(laid);
  };
  t.noGrad(() => {
    for (const [layer, bn] of batchNormPairs(model)) {
      const folded = foldedAffine(layer, bn);
      layer.inferenceParams = { weight: place(folded.weight), bias: place(folded.bias) };
      if (layer.inferenceParams.weight !== folded.weight) folded.weight.dispose();
      if (layer.inferenceParams.bias !== folded.bias) folded.bias.dispose();
      bn.foldedAway = true;
    }
    if (dtype === 'float32') return;
    for (const [, m] of model.namedModules()) {
      if ((m instanceof Conv2d || m instanceof Linear) && !m.inferenceParams) {
        m.inferenceParams = { weight: place(m.weight), bias: m.bias ? place(m.bias) : null };
      }
    }
  });
}

function dropFold(model: Module): void {
  for (const [, m] of model.namedModules()) {
    if (m instanceof Conv2d || m instanceof Linear) {
      const p = m.inferenceParams;
      m.inferenceParams = null;
      if (p && p.weight !== m.weight) p.weight.dispose();
      if (p?.bias && p.bias !== m.bias) p.bias.dispose();
    } else if (m instanceof BatchNorm) m.foldedAway = false;
  }
}
