// A classifier as a torchvision ResNet state dict: the encoder under torchvision's own names
// (conv1, bn1, layer1.0.conv1, ...; our modules already use them), and the head layers the
// classifier was tuned from plus its linear layer as `fc` (a Sequential when there are head
// layers, each head batch norm folded into its linear layer). The metadata says how to build
// the torchvision model that loads it.
import * as t from '../torch';
import type { Normalisation } from '../augment';
import type { Classifier } from '../models';
import { PlanError } from '../run/errors';
import { foldedValues, values } from './fold';


const TORCHVISION_DEPTHS = new Set([18, 34, 50, 101, 152]);
const LAYERS: Record<number, string> = { 18: '[2, 2, 2, 2]', 34: '[3, 4, 6, 3]', 50: '[3, 4, 6, 3]', 101: '[3, 4, 23, 3]', 152: '[3, 8, 36, 3]', 200: '[3, 24, 36, 3]' };

export interface TorchvisionExport {
  /** Tensors under torchvision's names (the caller disposes them). */
  tensors: Map<string, t.Tensor>;
  /** safetensors __metadata__: classes, normalisation, and the Python that builds the model. */
  metadata: Record<string, string>;
  /** The Python lines that build the torchvision model this state dict loads into. */
  python: string;
}

/** Checks that a classifier has a torchvision twin; the error names what differs. */
export function checkTorchvisionCompatible(model: Classifier): void {
  const c = model.encoder.config;
  const problems: string[] = [];
  if (c.width !== 1) problems.push(`its encoder has width ${c.width} (torchvision's ResNets have width 1)`);
  if (c.skRatio > 0) problems.push('its encoder has selective kernels (SK), which torchvision does not have');
  if (problems.length) {
    throw new PlanError(`--format safetensors-torchvision needs a plain ResNet, and this model differs: ${problems.join('; ')}. Export it with --format onnx instead`);
  }
}

export function torchvisionState(model: Classifier, info: { classes: string[]; norm: Normalisation; imageSize: number; channels: number }): TorchvisionExport {
  checkTorchvisionCompatible(model);
  const c = model.encoder.config;
  const tensors = new Map<string, t.Tensor>();
  for (const [name, v] of model.encoder.stateDict()) tensors.set(name, v.contiguous());
  // fc: the head layers used (linear with its batch norm folded in, ReLU where the layer has one), then the classifier.
  const fcLayers: string[] = [];
  const addLinear = (weight: Float32Array, bias: Float32Array, out: number, inDim: number, index: number | null): void => {
    const prefix = index === null ? 'fc' : `fc.${index}`;
    tensors.set(`${prefix}.weight`, t.tensor(weight, [out, inDim]));
    tensors.set(`${prefix}.bias`, t.tensor(bias, [out]));
    fcLayers.push(`nn.Linear(${inDim}, ${out})`);
  };
  const k = model.fineTuneFrom;
  let index = 0;
  for (let i = 0; i < k; i++) {
    const layer = model.head.layers[i]!;
    const lin = layer.linear;
    const folded = foldedValues(lin, layer.bn, `head.${i}`);
    addLinear(folded.weight, folded.bias, lin.outFeatures, lin.inFeatures, index++);
    if (layer.relu) {
      fcLayers.push('nn.ReLU()');
      index++;
    }
  }
  const fc = model.classifier.linear;
  const fcBias = fc.bias ? values(fc.bias, 'classifier.bias') : new Float32Array(fc.outFeatures);
  addLinear(values(fc.weight, 'classifier.weight'), fcBias, fc.outFeatures, fc.inFeatures, k === 0 ? null : index);

  const depth = c.depth;
  const block = depth >= 50 ? 'Bottleneck' : 'BasicBlock';
  const stem = c.cifarStem || c.inChannels !== 3;
  const lines = [
    'import torch.nn as nn, torchvision',
    TORCHVISION_DEPTHS.has(depth)
      ? `model = torchvision.models.resnet${depth}(num_classes=${fc.outFeatures})`
      : `from torchvision.models.resnet import ResNet, ${block}\nmodel = ResNet(${block}, ${LAYERS[depth]}, num_classes=${fc.outFeatures})`,
  ];
  if (stem) {
    lines.push(c.cifarStem ? `model.conv1 = nn.Conv2d(${c.inChannels}, 64, 3, 1, 1, bias=False)` : `model.conv1 = nn.Conv2d(${c.inChannels}, 64, 7, 2, 3, bias=False)`);
  }
  if (c.cifarStem) lines.push('model.maxpool = nn.Identity()');
  if (k > 0) lines.push(`model.fc = nn.Sequential(${fcLayers.join(', ')})`);
  const python = lines.join('\n');
  const metadata: Record<string, string> = {
    format: 'torchvision',
    arch: TORCHVISION_DEPTHS.has(depth) ? `resnet${depth}` : `ResNet(${block}, ${LAYERS[depth]})`,
    num_classes: String(fc.outFeatures),
    classes: JSON.stringify(info.classes),
    norm: JSON.stringify(info.norm),
    image_size: String(info.imageSize),
    channels: String(info.channels),
    cifar_stem: String(c.cifarStem),
    fc: k > 0 ? `nn.Sequential(${fcLayers.join(', ')})` : fcLayers[0]!,
    python,
    input: `float32 [batch, ${info.channels}, ${info.imageSize}, ${info.imageSize}] in [0, 1], normalised with norm (x - mean) / std per channel${info.imageSize > 32 ? ', after a centre crop of 87.5% resized back (bicubic)' : ''}`,
  };
  return { tensors, metadata, python };
}
