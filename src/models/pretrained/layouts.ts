// Published weights, mapped onto our ResNet and projection head: torchvision's and timm's
// ResNet names (ours are the same), our own exports (encoder plus head), and the PyTorch
// conversions of the SimCLRv2 checkpoints (see simclrv2.ts). The architecture is read from
// the names and shapes; the layout decides how images are fed (its normalisation).
import type { Tensor } from '../../torch';
import type { ResNetDepth, ResNetOptions } from '../resnet';
import { WeightsFileError } from './torch-file';
import { simclrv2Layout } from './simclrv2';

export type WeightsSource = 'torchvision' | 'simclr-ts' | 'simclrv2';

export interface WeightsLayout {
  source: WeightsSource;
  encoder: ResNetOptions & { depth: ResNetDepth; width: number; skRatio: number; cifarStem: boolean; inChannels: number };
  /** the file's projection head: its layers and output width (null: none, a fresh one is made) */
  head: { layers: number; outDim: number } | null;
  /** tensors under our SimCLRModel's names (encoder.*, head.*) */
  state: Map<string, Tensor>;
  /** how the weights take images: [0,1] pixels (SimCLRv2), or ImageNet's mean and std */
  norm: 'imagenet' | 'unit' | null;
}

const DEPTHS: [ResNetDepth, boolean, number[]][] = [
  [18, false, [2, 2, 2, 2]],
  [34, false, [3, 4, 6, 3]],
  [50, true, [3, 4, 6, 3]],
  [101, true, [3, 4, 23, 3]],
  [152, true, [3, 8, 36, 3]],
  [200, true, [3, 24, 36, 3]],
];

/** Wrappers training code puts around a state dict's names. */
const PREFIXES = ['', 'module.', 'model.', 'encoder.', 'backbone.', 'state_dict.', 'model.encoder.', 'module.encoder.', 'resnet.'];

export function depthFrom(bottleneck: boolean, blocks: number[], where: string): ResNetDepth {
  const hit = DEPTHS.find(([, b, l]) => b === bottleneck && l.join() === blocks.join());
  if (!hit) throw new WeightsFileError(`${where}: ${bottleneck ? 'bottleneck' : 'basic'} blocks [${blocks.join(', ')}] a stage match no ResNet depth (18, 34, 50, 101, 152, 200)`);
  return hit[0];
}

function refuseKnownOthers(names: string[], where: string): void {
  const hf = names.find((n) => /(^|\.)embedder\.embedder\.convolution\.weight$|(^|\.)encoder\.stages\.\d+\.layers\./.test(n));
  if (hf) throw new WeightsFileError(`${where}: Hugging Face transformers' ResNet layout ('${hf}'), which is not read; load a timm or torchvision ResNet's weights instead (the hub's timm/resnet50.* models use torchvision's names)`);
}

/** Maps a file's tensors onto our model; the error names what was not recognised. */
export function readLayout(tensors: Map<string, Tensor>, where: string): WeightsLayout {
  const names = [...tensors.keys()];
  refuseKnownOthers(names, where);
  const v2 = simclrv2Layout(tensors, where);
  if (v2) return v2;
  const prefix = PREFIXES.find((p) => (tensors.has(`${p}conv1.weight`) || tensors.has(`${p}conv1.0.weight`)) && tensors.has(`${p}layer1.0.bn1.weight`));
  if (prefix === undefined) {
    throw new WeightsFileError(`${where}: no ResNet found: expected torchvision/timm names (conv1.weight, layer1.0.conv1.weight, ...), our export's, or a SimCLRv2 conversion's; its first names are ${names.slice(0, 5).join(', ')}`);
  }
  return torchvisionLayout(tensors, prefix, where);
}

function torchvisionLayout(tensors: Map<string, Tensor>, prefix: string, where: string): WeightsLayout {
  const get = (n: string) => tensors.get(prefix + n);
  const bottleneck = tensors.has(`${prefix}layer1.0.conv3.weight`);
  const blocks = [1, 2, 3, 4].map((l) => {
    let n = 0;
    while (tensors.has(`${prefix}layer${l}.${n}.conv1.weight`)) n++;
    return n;
  });
  const depth = depthFrom(bottleneck, blocks, where);
  const sk = tensors.has(`${prefix}layer1.0.conv2.conv.weight`) || tensors.has(`${prefix}layer1.0.conv1.conv.weight`);
  // The stem: ResNet-D's three convs (conv1.0/.3/.6), the CIFAR stem's 3x3, or the 7x7.
  const resnetD = tensors.has(`${prefix}conv1.0.weight`);
  const stem = get(resnetD ? 'conv1.0.weight' : 'conv1.weight')!;
  const [, inChannels, kernel] = stem.shape as [number, number, number];
  // An SK export of ours pools its stride-1 shortcut (downsample.0 the pool, .1 the conv, .2 the norm) when made that way.
  const skStride1Pool = sk && tensors.has(`${prefix}layer1.0.downsample.2.weight`);
  const stemOut = resnetD ? get('conv1.6.weight')!.shape[0]! : stem.shape[0]!;
  const encoder = { depth, width: stemOut / 64, skRatio: sk ? 0.0625 : 0, cifarStem: !resnetD && kernel === 3, inChannels, zeroInitResidual: false, ...(skStride1Pool ? { skStride1Pool } : {}) };
  const state = new Map<string, Tensor>();
  const head = new Map<string, Tensor>();
  for (const [name, value] of tensors) {
    if (!name.startsWith(prefix)) continue;
    const own = name.slice(prefix.length);
    if (own.startsWith('fc.')) continue; // the ImageNet classifier: fine-tuning makes its own
    if (own.startsWith('head.')) head.set(own, value);
    else state.set(`encoder.${own}`, value);
  }
  // Our own exports carry the projection head (head.<i>.linear.weight, head.<i>.bn.*).
  let headInfo: WeightsLayout['head'] = null;
  let layers = 0;
  while (head.has(`head.${layers}.linear.weight`)) layers++;
  if (prefix === '' && layers > 0) {
    headInfo = { layers, outDim: head.get(`head.${layers - 1}.linear.weight`)!.shape[0]! };
    for (const [k, v] of head) state.set(k, v);
  }
  return { source: headInfo ? 'simclr-ts' : 'torchvision', encoder, head: headInfo, state, norm: headInfo ? null : 'imagenet' };
}
