// The PyTorch conversions of the official SimCLRv2 checkpoints (the best-known converter's
// layout: a dict {'resnet': ..., 'head': ...}; the stem at net.0, stages at net.1-4 with
// blocks net.<s>.blocks.<b>, batch norms at <module>.0, the SK conv as main_conv and
// mixing_conv, projections as projection.shortcut / projection.bn; the head's linear layers
// at layers.0/3/6 and batch norms at layers.1/4/7). Names and shapes give the architecture;
// the names are mapped onto ours (torchvision's, with SK modules conv/bn/reduce/reduce_bn/select).
import type { Tensor } from '../../torch';
import { depthFrom, type WeightsLayout } from './layouts';
import { WeightsFileError } from './torch-file';

const BN = ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'];

/** from -> to for a conv weight, and for a batch norm's five tensors (theirs sit at <name>.0). */
function mapper(tensors: Map<string, Tensor>, state: Map<string, Tensor>, where: string) {
  const take = (from: string, to: string): void => {
    const v = tensors.get(from);
    if (!v) throw new WeightsFileError(`${where}: a SimCLRv2 conversion without ${from}`);
    state.set(to, v);
  };
  return {
    conv: (from: string, to: string) => take(`${from}.weight`, `${to}.weight`),
    bn: (from: string, to: string) => {
      for (const k of BN) if (tensors.has(`${from}.0.${k}`)) take(`${from}.0.${k}`, `${to}.${k}`);
    },
    take,
  };
}

export function simclrv2Layout(tensors: Map<string, Tensor>, where: string): WeightsLayout | null {
  if (!tensors.has('resnet.net.0.0.weight') || !tensors.has('resnet.net.1.blocks.0.net.0.weight')) return null;
  const sk = tensors.has('resnet.net.1.blocks.0.net.2.main_conv.0.weight');
  const blocks = [1, 2, 3, 4].map((s) => {
    let n = 0;
    while (tensors.has(`resnet.net.${s}.blocks.${n}.net.0.weight`)) n++;
    return n;
  });
  // Every SimCLRv2 checkpoint is a bottleneck ResNet (50, 101, 152).
  const depth = depthFrom(true, blocks, where);
  const stemLast = tensors.get(sk ? 'resnet.net.0.4.weight' : 'resnet.net.0.0.weight');
  if (!stemLast) throw new WeightsFileError(`${where}: a SimCLRv2 conversion without its stem's last convolution (resnet.net.0.4.weight)`);
  const stemOut = stemLast.shape[0]!;
  const inChannels = tensors.get('resnet.net.0.0.weight')!.shape[1]!;
  const state = new Map<string, Tensor>();
  const m = mapper(tensors, state, where);
  if (sk) {
    m.conv('resnet.net.0.0', 'encoder.conv1.0');
    m.bn('resnet.net.0.1', 'encoder.conv1.1');
    m.conv('resnet.net.0.2', 'encoder.conv1.3');
    m.bn('resnet.net.0.3', 'encoder.conv1.4');
    m.conv('resnet.net.0.4', 'encoder.conv1.6');
    m.bn('resnet.net.0.5', 'encoder.bn1');
  } else {
    m.conv('resnet.net.0.0', 'encoder.conv1');
    m.bn('resnet.net.0.1', 'encoder.bn1');
  }
  blocks.forEach((count, s) => {
    for (let b = 0; b < count; b++) {
      const from = `resnet.net.${s + 1}.blocks.${b}`;
      const to = `encoder.layer${s + 1}.${b}`;
      m.conv(`${from}.net.0`, `${to}.conv1`);
      m.bn(`${from}.net.1`, `${to}.bn1`);
      if (sk) {
        m.conv(`${from}.net.2.main_conv.0`, `${to}.conv2.conv`);
        m.bn(`${from}.net.2.main_conv.1`, `${to}.conv2.bn`);
        m.conv(`${from}.net.2.mixing_conv.0`, `${to}.conv2.reduce`);
        m.bn(`${from}.net.2.mixing_conv.1`, `${to}.conv2.reduce_bn`);
        m.conv(`${from}.net.2.mixing_conv.2`, `${to}.conv2.select`);
        m.conv(`${from}.net.3`, `${to}.conv3`);
        m.bn(`${from}.net.4`, `${to}.bn3`);
      } else {
        m.conv(`${from}.net.2`, `${to}.conv2`);
        m.bn(`${from}.net.3`, `${to}.bn2`);
        m.conv(`${from}.net.4`, `${to}.conv3`);
        m.bn(`${from}.net.5`, `${to}.bn3`);
      }
      if (b === 0) {
        // SK: pool, conv, bn (downsample.1, .2); otherwise conv, bn (downsample.0, .1).
        m.conv(sk ? `${from}.projection.shortcut.2` : `${from}.projection.shortcut`, `${to}.downsample.${sk ? 1 : 0}`);
        m.bn(`${from}.projection.bn`, `${to}.downsample.${sk ? 2 : 1}`);
      }
    }
  });
  let head: WeightsLayout['head'] = null;
  if (tensors.has('head.layers.0.weight')) {
    let layers = 0;
    while (tensors.has(`head.layers.${3 * layers}.weight`)) layers++;
    for (let i = 0; i < layers; i++) {
      m.take(`head.layers.${3 * i}.weight`, `head.${i}.linear.weight`);
      // The last batch norm has no beta (TF's center=False): its bias, zeros, is not loaded.
      for (const k of BN) {
        if (i === layers - 1 && k === 'bias') continue;
        if (tensors.has(`head.layers.${3 * i + 1}.${k}`)) m.take(`head.layers.${3 * i + 1}.${k}`, `head.${i}.bn.${k}`);
      }
    }
    head = { layers, outDim: tensors.get(`head.layers.${3 * (layers - 1)}.weight`)!.shape[0]! };
  }
  const encoder = { depth, width: stemOut / 64, skRatio: sk ? 0.0625 : 0, cifarStem: false, inChannels, zeroInitResidual: false, ...(sk ? { skStride1Pool: true } : {}) };
  return { source: 'simclrv2', encoder, head, state, norm: 'unit' };
}
