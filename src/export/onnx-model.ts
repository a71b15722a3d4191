// A trained classifier as an ONNX graph: pixels in (uint8 or [0, 1] floats, NCHW), the
// evaluation transform (centre crop for images over 32px, normalisation) inside the graph,
// batch norm folded into the convolutions and linear layers, logits and probabilities out.
import * as t from '../torch';
import { isSmallImage, type Normalisation } from '../augment';
import { AvgPool2d, BatchNorm2d, Conv2d, MaxPool2d, ReLU, Sequential, type Module } from '../nn';
import { BasicBlock, Bottleneck, SelectiveKernelConv, type Classifier, type ResNet } from '../models';
import { foldedValues, values } from './fold';
import { OnnxGraph, int, ints, str } from './onnx-graph';

export type PixelInput = 'uint8' | 'float';

export interface OnnxExportOptions {
  imageSize: number;
  channels: number;
  norm: Normalisation;
  classes: string[];
  /** uint8 pixels 0..255 (default) or float32 pixels in [0, 1]. */
  input?: PixelInput;
  /** Extra metadata_props (run, stage, ...). */
  metadata?: Record<string, string>;
  producerVersion?: string;
}

/** A value in the graph with its static channel count and spatial size (the batch is dynamic). */
interface Val {
  name: string;
  c: number;
  h: number;
  w: number;
}

const pair = (p: number | [number, number] | undefined, d: number): [number, number] => (p === undefined ? [d, d] : typeof p === 'number' ? [p, p] : p);

function poolSize(n: number, k: number, s: number, p: number, ceil: boolean, d = 1): number {
  const span = n + 2 * p - d * (k - 1) - 1;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // PyTorch's rule: the last window must start inside the input (or its left padding).
  if (ceil && (out - 1) * s >= n + p) out--;
  return out;
}

/** Emits the ONNX nodes of one of our models, reading its weights. */
class Emitter {
  constructor(readonly g: OnnxGraph) {}

  /** Conv (+ folded batch norm) (+ ReLU). */
  conv(x: Val, conv: Conv2d, bn: BatchNorm2d | null, relu: boolean, label: string): Val {
    const [kh, kw] = pair(conv.kernelSize, 1);
    const [sh, sw] = pair(conv.options.stride, 1);
    const [ph, pw] = pair(conv.options.padding, 0);
    const [dh, dw] = pair(conv.options.dilation, 1);
    const groups = conv.options.groups ?? 1;
    if (x.c !== conv.inChannels) throw new Error(`${label}: ${x.c} channels in, the convolution takes ${conv.inChannels}`);
    const folded = bn ? foldedValues(conv, bn, label) : { weight: values(conv.weight, `${label}.weight`), bias: conv.bias ? values(conv.bias, `${label}.bias`) : null };
    const dims = [conv.outChannels, conv.inChannels / groups, kh, kw];
    const inputs = [x.name, this.g.constant(`${label}.weight`, folded.weight, dims)];
    if (folded.bias) inputs.push(this.g.constant(`${label}.bias`, folded.bias, [conv.outChannels]));
    let y = this.g.node('Conv', inputs, {
      kernel_shape: ints([kh, kw]),
      strides: ints([sh, sw]),
      pads: ints([ph, pw, ph, pw]),
      dilations: ints([dh, dw]),
      group: int(groups),
    });
    if (relu) y = this.g.node('Relu', [y]);
    return { name: y, c: conv.outChannels, h: poolSize(x.h, kh, sh, ph, false, dh), w: poolSize(x.w, kw, sw, pw, false, dw) };
  }

  relu(x: Val): Val {
    return { ...x, name: this.g.node('Relu', [x.name]) };
  }

  maxPool(x: Val, m: MaxPool2d): Val {
    const [k1, k2] = pair(m.kernel, 1);
    const [s1, s2] = pair(m.options.stride ?? m.kernel, 1);
    const [p1, p2] = pair(m.options.padding, 0);
    const ceil = m.options.ceilMode ?? false;
    const name = this.g.node('MaxPool', [x.name], { kernel_shape: ints([k1, k2]), strides: ints([s1, s2]), pads: ints([p1, p2, p1, p2]), ceil_mode: int(ceil ? 1 : 0) });
    return { name, c: x.c, h: poolSize(x.h, k1, s1, p1, ceil), w: poolSize(x.w, k2, s2, p2, ceil) };
  }

  avgPool(x: Val, m: AvgPool2d): Val {
    const [k1, k2] = pair(m.kernel, 1);
    const [s1, s2] = pair(m.options.stride ?? m.kernel, 1);
    const [p1, p2] = pair(m.options.padding, 0);
    const ceil = m.options.ceilMode ?? false;
    const name = this.g.node('AveragePool', [x.name], {
      kernel_shape: ints([k1, k2]),
      strides: ints([s1, s2]),
      pads: ints([p1, p2, p1, p2]),
      ceil_mode: int(ceil ? 1 : 0),
      count_include_pad: int(m.options.countIncludePad === false ? 0 : 1),
    });
    return { name, c: x.c, h: poolSize(x.h, k1, s1, p1, ceil), w: poolSize(x.w, k2, s2, p2, ceil) };
  }

  /** A Sequential of convolutions, batch norms, ReLUs and pools, each conv folded with the norm after it. */
  sequential(x: Val, seq: Sequential, label: string, trailingBn: BatchNorm2d | null = null): Val {
    const layers = [...seq.layers];
    let y = x;
    for (let i = 0; i < layers.length; i++) {
      const m = layers[i]!;
      const name = `${label}.${i}`;
      if (m instanceof Conv2d) {
        const next = layers[i + 1];
        const bn = next instanceof BatchNorm2d ? next : i === layers.length - 1 ? trailingBn : null;
        if (next instanceof BatchNorm2d) i++;
        y = this.conv(y, m, bn, false, name);
      } else if (m instanceof ReLU) y = this.relu(y);
      else if (m instanceof AvgPool2d) y = this.avgPool(y, m);
      else if (m instanceof MaxPool2d) y = this.maxPool(y, m);
      else throw new Error(`ONNX export: ${name} is a ${m.constructor.name}, which the exporter does not know`);
    }
    return y;
  }

  /** SimCLRv2's selective kernel: two branches mixed by a softmax attention over them. */
  selectiveKernel(x: Val, sk: SelectiveKernelConv, label: string): Val {
    const c = sk.outChannels;
    const both = this.conv(x, sk.conv, sk.bn, true, `${label}.conv`);
    const split = this.g.node('Reshape', [both.name, this.g.int64s(`${label}.split_shape`, [0, 2, c, both.h, both.w])]);
    const axis1 = this.g.int64s(`${label}.axis1`, [1]);
    const summed = this.g.node('ReduceSum', [split, axis1], { keepdims: int(0) });
    const pooled = this.g.node('GlobalAveragePool', [summed]);
    const reduced = this.conv({ name: pooled, c, h: 1, w: 1 }, sk.reduce, sk.reduce_bn, true, `${label}.reduce`);
    const selected = this.conv(reduced, sk.select, null, false, `${label}.select`);
    const logits = this.g.node('Reshape', [selected.name, this.g.int64s(`${label}.select_shape`, [0, 2, c, 1, 1])]);
    const attention = this.g.node('Softmax', [logits], { axis: int(1) });
    const mixed = this.g.node('ReduceSum', [this.g.node('Mul', [split, attention]), axis1], { keepdims: int(0) });
    return { name: mixed, c, h: both.h, w: both.w };
  }

  block(x: Val, block: Module, label: string): Val {
    let y: Val;
    let downsample: Sequential | null;
    if (block instanceof BasicBlock) {
      y = block.conv1 instanceof SelectiveKernelConv ? this.selectiveKernel(x, block.conv1, `${label}.conv1`) : this.conv(x, block.conv1 as Conv2d, block.bn1 as BatchNorm2d, true, `${label}.conv1`);
      y = this.conv(y, block.conv2, block.bn2, false, `${label}.conv2`);
      downsample = block.downsample;
    } else if (block instanceof Bottleneck) {
      y = this.conv(x, block.conv1, block.bn1, true, `${label}.conv1`);
      y = block.conv2 instanceof SelectiveKernelConv ? this.selectiveKernel(y, block.conv2, `${label}.conv2`) : this.conv(y, block.conv2 as Conv2d, block.bn2 as BatchNorm2d, true, `${label}.conv2`);
      y = this.conv(y, block.conv3, block.bn3, false, `${label}.conv3`);
      downsample = block.downsample;
    } else {
      throw new Error(`ONNX export: ${label} is a ${block.constructor.name}, not a ResNet block`);
    }
    const shortcut = downsample ? this.sequential(x, downsample, `${label}.downsample`) : x;
    if (shortcut.c !== y.c || shortcut.h !== y.h || shortcut.w !== y.w) {
      throw new Error(`ONNX export: ${label}'s shortcut is [${shortcut.c}, ${shortcut.h}, ${shortcut.w}], its residual [${y.c}, ${y.h}, ${y.w}]`);
    }
    return this.relu({ ...y, name: this.g.node('Add', [y.name, shortcut.name]) });
  }

  /** Pooled features [N, outputDim]. */
  encoder(x: Val, net: ResNet): { name: string; dim: number } {
    let y = net.conv1 instanceof Sequential ? this.sequential(x, net.conv1, 'encoder.conv1', net.bn1) : this.conv(x, net.conv1 as Conv2d, net.bn1, false, 'encoder.conv1');
    y = this.relu(y);
    if (net.maxpool instanceof MaxPool2d) y = this.maxPool(y, net.maxpool);
    for (const layer of ['layer1', 'layer2', 'layer3', 'layer4'] as const) {
      net[layer].layers.forEach((b, i) => (y = this.block(y, b, `encoder.${layer}.${i}`)));
    }
    const pooled = this.g.node('GlobalAveragePool', [y.name]);
    return { name: this.g.node('Flatten', [pooled], { axis: int(1) }), dim: y.c };
  }

  /** Gemm with weights [out, in] (transB). */
  gemm(x: string, weight: Float32Array, bias: Float32Array | null, outDim: number, inDim: number, label: string): string {
    const inputs = [x, this.g.constant(`${label}.weight`, weight, [outDim, inDim])];
    if (bias) inputs.push(this.g.constant(`${label}.bias`, bias, [outDim]));
    return this.g.node('Gemm', inputs, { transB: int(1) });
  }
}

/** The evaluation transform in the graph: pixels -> [0, 1] -> centre crop (over 32px) -> normalised. */
function preprocess(g: OnnxGraph, o: OnnxExportOptions): Val {
  const { imageSize: s, channels: c } = o;
  const uint8 = (o.input ?? 'uint8') === 'uint8';
  const pixels = g.input('pixels', uint8 ? 'uint8' : 'float32', ['batch', c, s, s], uint8 ? 'uint8 pixels 0..255, NCHW' : 'float32 pixels in [0, 1], NCHW');
  let x = pixels;
  if (uint8) x = g.node('Div', [g.node('Cast', [x], { to: int(1) }), g.constant('scale_255', Float32Array.of(255), [])]);
  if (!isSmallImage(s)) {
    // The same sampling grid as evaluation (centre 87.5%, bicubic, border padding), made once here.
    const grid = t.tidy(() => {
      const side = 0.875;
      const theta = t.tensor([[side, 0, 0], [0, side, 0]]).reshape(1, 2, 3);
      return t.F.affineGrid(theta, [1, c, s, s], false).data() as Float32Array;
    });
    const gridConst = g.constant('crop_grid', grid, [1, s, s, 2]);
    const batch = g.node('Shape', [x], { start: int(0), end: int(1) });
    const shape = g.node('Concat', [batch, g.int64s('ones3', [1, 1, 1])], { axis: int(0) });
    const expanded = g.node('Expand', [gridConst, shape]);
    const sampled = g.node('GridSample', [x, expanded], { mode: str('bicubic'), padding_mode: str('border'), align_corners: int(0) });
    x = g.node('Clip', [sampled, g.constant('zero', Float32Array.of(0), []), g.constant('one', Float32Array.of(1), [])]);
  }
  const mean = g.constant('norm_mean', Float32Array.from(o.norm.mean.slice(0, c)), [1, c, 1, 1]);
  const std = g.constant('norm_std', Float32Array.from(o.norm.std.slice(0, c)), [1, c, 1, 1]);
  x = g.node('Div', [g.node('Sub', [x, mean]), std]);
  return { name: x, c, h: s, w: s };
}

/** What the exported model's input is, in words (the model's doc string and metadata say it). */
export function describeInput(o: Pick<OnnxExportOptions, 'imageSize' | 'channels' | 'input'>): string {
  const px = (o.input ?? 'uint8') === 'uint8' ? 'uint8 pixels 0..255' : 'float32 pixels in [0, 1]';
  const colour = o.channels === 1 ? '1 channel (grayscale)' : '3 channels (RGB)';
  return `'pixels': ${px}, shape [batch, ${o.channels}, ${o.imageSize}, ${o.imageSize}] (NCHW, ${colour}), the image resized on its shorter side to ${o.imageSize} and centre-cropped square; normalisation${isSmallImage(o.imageSize) ? ' happens' : ' and the 87.5% centre crop happen'} inside the model`;
}

/** The classifier as ONNX protobuf bytes (opset 17, dynamic batch). */
export function classifierToOnnx(model: Classifier, o: OnnxExportOptions): Uint8Array {
  if (o.classes.length !== model.classifier.linear.outFeatures) {
    throw new Error(`ONNX export: ${o.classes.length} class names for ${model.classifier.linear.outFeatures} outputs`);
  }
  const g = new OnnxGraph('simclr_classifier');
  const e = new Emitter(g);
  const x = preprocess(g, o);
  let h = e.encoder(x, model.encoder);
  for (let i = 0; i < model.fineTuneFrom; i++) {
    const layer = model.head.layers[i]!;
    const lin = layer.linear;
    const folded = foldedValues(lin, layer.bn, `head.${i}`);
    let y = e.gemm(h.name, folded.weight, folded.bias, lin.outFeatures, lin.inFeatures, `head.${i}`);
    if (layer.relu) y = g.node('Relu', [y]);
    h = { name: y, dim: lin.outFeatures };
  }
  const fc = model.classifier.linear;
  const logits = e.gemm(h.name, values(fc.weight, 'classifier.weight'), fc.bias ? values(fc.bias, 'classifier.bias') : null, fc.outFeatures, fc.inFeatures, 'classifier');
  const k = fc.outFeatures;
  g.node('Identity', [logits], {}, 'logits');
  g.node('Softmax', [logits], { axis: int(1) }, 'probabilities');
  g.output('logits', 'float32', ['batch', k], 'class scores before softmax');
  g.output('probabilities', 'float32', ['batch', k], 'softmax of the logits');
  const input = describeInput(o);
  return g.encode({
    producerVersion: o.producerVersion ?? '',
    docString: `SimCLRv2 classifier exported by simclr-ts. Input ${input}. Outputs 'logits' and 'probabilities' [batch, ${k}] in the order of the metadata's 'classes'.`,
    metadata: {
      classes: JSON.stringify(o.classes),
      input,
      input_type: o.input ?? 'uint8',
      image_size: String(o.imageSize),
      channels: String(o.channels),
      norm: JSON.stringify(o.norm),
      ...o.metadata,
    },
  });
}


export const ONNX_NAMES = { input: 'pixels', logits: 'logits', probabilities: 'probabilities' } as const;
