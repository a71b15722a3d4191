// ResNet v1 (torchvision layout and names) with SimCLRv2's options: a width multiplier,
// selective kernels (SK) with the ResNet-D stem and average-pool shortcuts, and the
// CIFAR stem (3x3 conv, stride 1, no max-pool) for small images.
import { Tensor, cat, tidy, F } from '../torch';
import {
  AvgPool2d,
  BatchNorm,
  BatchNorm2d,
  Conv2d,
  Identity,
  Linear,
  MaxPool2d,
  Module,
  ReLU,
  Sequential,
  init,
  type Placement,
} from '../nn';

export type ResNetDepth = 18 | 34 | 50 | 101 | 152 | 200;

export interface ResNetOptions extends Placement {
  /** 18, 34 (basic blocks) or 50, 101, 152, 200 (bottlenecks). Default 50. */
  depth?: ResNetDepth;
  /** Channel multiplier (SimCLRv2 uses 1, 2, 3). Default 1. */
  width?: number;
  /** Selective-kernel reduction ratio; 0 turns SK off, SimCLRv2 uses 0.0625. Default 0. */
  skRatio?: number;
  /** 3x3 stride-1 stem and no max-pool, for images of 32x32 or less. Default false. */
  cifarStem?: boolean;
  /** Input channels (1 for grayscale). Default 3. */
  inChannels?: number;
  /** Adds the classifier `fc` (torchvision's layout) when set. Default: none (an encoder). */
  numClasses?: number;
  /** Zero-initialise the last batch norm of each block. Default false (torchvision's default). */
  zeroInitResidual?: boolean;
  /**
   * SK only: the stride-1 projection shortcut (first block of the first stage) average-pools
   * 2x2 with stride 1, padding at the end and not counting it, as the official SimCLRv2 code
   * ('SAME'). Default false: runs made before it was matched compute as they did.
   */
  skStride1Pool?: boolean;
}

const BLOCKS: Record<ResNetDepth, { bottleneck: boolean; layers: [number, number, number, number] }> = {
  18: { bottleneck: false, layers: [2, 2, 2, 2] },
  34: { bottleneck: false, layers: [3, 4, 6, 3] },
  50: { bottleneck: true, layers: [3, 4, 6, 3] },
  101: { bottleneck: true, layers: [3, 4, 23, 3] },
  152: { bottleneck: true, layers: [3, 8, 36, 3] },
  200: { bottleneck: true, layers: [3, 24, 36, 3] },
};

/** The CIFAR stem is used for images this size or smaller. */
export const CIFAR_STEM_MAX_SIZE = 32;

/** Applies fns in turn, freeing each intermediate result (autograd keeps what it needs). */
function chain(x: Tensor, ...fns: ((t: Tensor) => Tensor)[]): Tensor {
  let out = x;
  for (const fn of fns) {
    const next = fn(out);
    if (out !== x && next !== out) out.dispose();
    out = next;
  }
  return out;
}

/**
 * relu(residual + shortcut(x)), summed into the residual in place (it is the block's last
 * batch norm's fresh output, which no backward pass reads, as torchvision's `out += identity`);
 * frees the projected shortcut.
 */
function addShortcut(residual: Tensor, x: Tensor, downsample: Sequential | null): Tensor {
  const identity = downsample ? downsample.forward(x) : x;
  residual.add_(identity);
  if (identity !== x) identity.dispose();
  return residual.relu_();
}

/**
 * Selective kernel convolution (SimCLRv2's variant): one 3x3 conv makes two branches,
 * a softmax attention computed from their pooled sum mixes them per channel.
 */
export class SelectiveKernelConv extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  readonly reduce: Conv2d;
  readonly reduce_bn: BatchNorm2d;
  readonly select: Conv2d;
  constructor(
    inChannels: number,
    readonly outChannels: number,
    stride: number,
    skRatio: number,
    place: Placement,
    minDim = 32,
  ) {
    super();
    const mid = Math.max(Math.floor(outChannels * skRatio), minDim);
    this.conv = this.registerModule('conv', new Conv2d(inChannels, 2 * outChannels, 3, { stride, padding: 1, bias: false, ...place }));
    this.bn = this.registerModule('bn', new BatchNorm2d(2 * outChannels, place));
    this.reduce = this.registerModule('reduce', new Conv2d(outChannels, mid, 1, { bias: false, ...place }));
    this.reduce_bn = this.registerModule('reduce_bn', new BatchNorm2d(mid, place));
    this.select = this.registerModule('select', new Conv2d(mid, 2 * outChannels, 1, { bias: false, ...place }));
  }
  batchNormPairs(): [Conv2d, BatchNorm][] {
    return [
      [this.conv, this.bn],
      [this.reduce, this.reduce_bn],
    ];
  }
  forward(x: Tensor): Tensor {
    const c = this.outChannels;
    const branches = chain(x, (t) => this.conv.forward(t), (t) => this.bn.forward(t), (t) => t.relu_());
    const [n, , h, w] = branches.shape as [number, number, number, number];
    const split = branches.view(n, 2, c, h, w);
    branches.dispose();
    const weights = chain(
      split,
      (t) => t.sum(1),
      (t) => t.mean([2, 3], true),
      (t) => this.reduce.forward(t),
      (t) => this.reduce_bn.forward(t),
      (t) => t.relu_(),
      (t) => this.select.forward(t),
      (t) => t.view(n, 2, c, 1, 1),
      (t) => t.softmax(1),
    );
    const mixed = chain(split, (t) => t.mul(weights), (t) => t.sum(1));
    split.dispose();
    weights.dispose();
    return mixed;
  }
}

/**
 * A 2x2 average pool with stride 1 that keeps the size: the last row and column are padded
 * with copies of themselves, so each border window averages only real pixels (TF's 'SAME'
 * pooling, which pads at the end and does not count the padding).
 */
export class EndPaddedAvgPool extends Module {
  forward(x: Tensor): Tensor {
    const [, , h, w] = x.shape as [number, number, number, number];
    return tidy(() => {
      const rows = cat([x, x.narrow(2, h - 1, 1)], 2);
      return F.avgPool2d(cat([rows, rows.narrow(3, w - 1, 1)], 3), 2, { stride: 1 });
    });
  }
}

function shortcut(inChannels: number, outChannels: number, stride: number, sk: boolean, place: Placement, stride1Pool = false): Sequential | null {
  if (stride === 1 && inChannels === outChannels) return null;
  if (sk && stride === 1 && stride1Pool) {
    return new Sequential(new EndPaddedAvgPool(), new Conv2d(inChannels, outChannels, 1, { bias: false, ...place }), new BatchNorm2d(outChannels, place));
  }
  if (sk && stride > 1) {
    // ResNet-D: average-pool first, so the 1x1 conv sees every input pixel.
    return new Sequential(
      new AvgPool2d(2, { stride: 2, ceilMode: true, countIncludePad: false }),
      new Conv2d(inChannels, outChannels, 1, { bias: false, ...place }),
      new BatchNorm2d(outChannels, place),
    );
  }
  return new Sequential(new Conv2d(inChannels, outChannels, 1, { stride, bias: false, ...place }), new BatchNorm2d(outChannels, place));
}

export class BasicBlock extends Module {
  static readonly expansion = 1;
  readonly conv1: Module;
  readonly bn1: Module;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null;
  constructor(inChannels: number, planes: number, stride: number, skRatio: number, place: Placement, skStride1Pool = false) {
    super();
    const sk = skRatio > 0;
    // With SK the first conv becomes the selective kernel unit, which has its own BN + ReLU.
    this.conv1 = this.registerModule(
      'conv1',
      sk ? new SelectiveKernelConv(inChannels, planes, stride, skRatio, place) : new Conv2d(inChannels, planes, 3, { stride, padding: 1, bias: false, ...place }),
    );
    this.bn1 = sk ? new Identity() : this.registerModule('bn1', new BatchNorm2d(planes, place));
    this.conv2 = this.registerModule('conv2', new Conv2d(planes, planes, 3, { padding: 1, bias: false, ...place }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes, place));
    const ds = shortcut(inChannels, planes, stride, sk, place, skStride1Pool);
    this.downsample = ds ? this.registerModule('downsample', ds) : null;
  }
  get lastBn(): BatchNorm2d {
    return this.bn2;
  }
  batchNormPairs(): [Conv2d, BatchNorm][] {
    const pairs: [Conv2d, BatchNorm][] = [[this.conv2, this.bn2]];
    if (this.conv1 instanceof Conv2d && this.bn1 instanceof BatchNorm) pairs.push([this.conv1, this.bn1]);
    return pairs;
  }
  forward(x: Tensor): Tensor {
    const sk = this.conv1 instanceof SelectiveKernelConv;
    const out = chain(
      x,
      (t) => this.conv1.forward(t),
      ...(sk ? [] : [(t: Tensor) => this.bn1.forward(t), (t: Tensor) => t.relu_()]),
      (t) => this.conv2.forward(t),
      (t) => this.bn2.forward(t),
    );
    return addShortcut(out, x, this.downsample);
  }
}

export class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Module;
  readonly bn2: Module;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Sequential | null;
  constructor(inChannels: number, planes: number, stride: number, skRatio: number, place: Placement, skStride1Pool = false) {
    super();
    const sk = skRatio > 0;
    const out = planes * Bottleneck.expansion;
    this.conv1 = this.registerModule('conv1', new Conv2d(inChannels, planes, 1, { bias: false, ...place }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes, place));
    this.conv2 = this.registerModule(
      'conv2',
      sk ? new SelectiveKernelConv(planes, planes, stride, skRatio, place) : new Conv2d(planes, planes, 3, { stride, padding: 1, bias: false, ...place }),
    );
    this.bn2 = sk ? new Identity() : this.registerModule('bn2', new BatchNorm2d(planes, place));
    this.conv3 = this.registerModule('conv3', new Conv2d(planes, out, 1, { bias: false, ...place }));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(out, place));
    const ds = shortcut(inChannels, out, stride, sk, place, skStride1Pool);
    this.downsample = ds ? this.registerModule('downsample', ds) : null;
  }
  get lastBn(): BatchNorm2d {
    return this.bn3;
  }
  batchNormPairs(): [Conv2d, BatchNorm][] {
    const pairs: [Conv2d, BatchNorm][] = [
      [this.conv1, this.bn1],
      [this.conv3, this.bn3],
    ];
    if (this.conv2 instanceof Conv2d && this.bn2 instanceof BatchNorm) pairs.push([this.conv2, this.bn2]);
    return pairs;
  }
  forward(x: Tensor): Tensor {
    const sk = this.conv2 instanceof SelectiveKernelConv;
    const out = chain(
      x,
      (t) => this.conv1.forward(t),
      (t) => this.bn1.forward(t),
      (t) => t.relu_(),
      (t) => this.conv2.forward(t),
      ...(sk ? [] : [(t: Tensor) => this.bn2.forward(t), (t: Tensor) => t.relu_()]),
      (t) => this.conv3.forward(t),
      (t) => this.bn3.forward(t),
    );
    return addShortcut(out, x, this.downsample);
  }
}

export class ResNet extends Module {
  readonly conv1: Module;
  readonly bn1: BatchNorm2d;
  readonly maxpool: Module;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly layer4: Sequential;
  readonly fc: Linear | null;
  /** Width of the pooled features (512 x width for depths 18/34, 2048 x width above). */
  readonly outputDim: number;
  readonly config: Required<Omit<ResNetOptions, 'numClasses' | 'device' | 'dtype'>> & { numClasses: number | null };

  constructor(options: ResNetOptions = {}) {
    super();
    const depth = options.depth ?? 50;
    const spec = BLOCKS[depth];
    if (!spec) throw new Error(`ResNet: depth must be one of ${Object.keys(BLOCKS).join(', ')}, got ${depth}`);
    const width = options.width ?? 1;
    if (!(width > 0)) throw new Error(`ResNet: width must be positive, got ${width}`);
    const skRatio = options.skRatio ?? 0;
    if (!(skRatio >= 0 && skRatio < 1)) throw new Error(`ResNet: skRatio must be in [0, 1), got ${skRatio}`);
    const cifarStem = options.cifarStem ?? false;
    const inChannels = options.inChannels ?? 3;
    const place: Placement = { device: options.device, dtype: options.dtype };
    const skStride1Pool = options.skStride1Pool ?? false;
    this.config = { depth, width, skRatio, cifarStem, inChannels, numClasses: options.numClasses ?? null, zeroInitResidual: options.zeroInitResidual ?? false, skStride1Pool };

    const stemWidth = Math.round(64 * width);
    if (cifarStem) {
      this.conv1 = this.registerModule('conv1', new Conv2d(inChannels, stemWidth, 3, { stride: 1, padding: 1, bias: false, ...place }));
    } else if (skRatio > 0) {
      // ResNet-D stem: three 3x3 convs in place of the 7x7.
      const half = Math.floor(stemWidth / 2);
      this.conv1 = this.registerModule(
        'conv1',
        new Sequential(
          new Conv2d(inChannels, half, 3, { stride: 2, padding: 1, bias: false, ...place }),
          new BatchNorm2d(half, place),
          new ReLU(),
          new Conv2d(half, half, 3, { padding: 1, bias: false, ...place }),
          new BatchNorm2d(half, place),
          new ReLU(),
          new Conv2d(half, stemWidth, 3, { padding: 1, bias: false, ...place }),
        ),
      );
    } else {
      this.conv1 = this.registerModule('conv1', new Conv2d(inChannels, stemWidth, 7, { stride: 2, padding: 3, bias: false, ...place }));
    }
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(stemWidth, place));
    this.maxpool = cifarStem ? new Identity() : new MaxPool2d(3, { stride: 2, padding: 1 });

    const Block = spec.bottleneck ? Bottleneck : BasicBlock;
    let channels = stemWidth;
    const makeLayer = (planes: number, blocks: number, stride: number): Sequential => {
      const list: Module[] = [];
      for (let i = 0; i < blocks; i++) {
        list.push(new Block(channels, planes, i === 0 ? stride : 1, skRatio, place, skStride1Pool));
        channels = planes * Block.expansion;
      }
      return new Sequential(...list);
    };
    this.layer1 = this.registerModule('layer1', makeLayer(Math.round(64 * width), spec.layers[0], 1));
    this.layer2 = this.registerModule('layer2', makeLayer(Math.round(128 * width), spec.layers[1], 2));
    this.layer3 = this.registerModule('layer3', makeLayer(Math.round(256 * width), spec.layers[2], 2));
    this.layer4 = this.registerModule('layer4', makeLayer(Math.round(512 * width), spec.layers[3], 2));
    this.outputDim = channels;
    this.fc = options.numClasses ? this.registerModule('fc', new Linear(channels, options.numClasses, place)) : null;
    this.initialise();
  }

  // torchvision's initialisation: He normal (fan_out) convolutions, unit batch norms.
  private initialise(): void {
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d) init.kaimingNormal_(m.weight, { mode: 'fanOut', nonlinearity: 'relu' });
      else if (m instanceof BatchNorm2d && m.weight && m.bias) {
        init.ones_(m.weight);
        init.zeros_(m.bias);
      }
    }
    if (this.config.zeroInitResidual) {
      for (const [, m] of this.namedModules()) {
        if ((m instanceof BasicBlock || m instanceof Bottleneck) && m.lastBn.weight) init.zeros_(m.lastBn.weight);
      }
    }
  }

  /** The stem's convolution (the last of the ResNet-D stem's three) and bn1. */
  batchNormPairs(): [Conv2d, BatchNorm][] {
    const stem = this.conv1 instanceof Sequential ? this.conv1.layers[this.conv1.layers.length - 1] : this.conv1;
    return stem instanceof Conv2d ? [[stem, this.bn1]] : [];
  }

  /** Pooled features [N, outputDim] (the encoder output SimCLR uses). */
  features(x: Tensor): Tensor {
    return chain(
      x,
      (t) => this.conv1.forward(t),
      (t) => this.bn1.forward(t),
      (t) => t.relu_(),
      (t) => this.maxpool.forward(t),
      (t) => this.layer1.forward(t),
      (t) => this.layer2.forward(t),
      (t) => this.layer3.forward(t),
      (t) => this.layer4.forward(t),
      (t) => t.mean([2, 3]),
    );
  }

  /** Logits when the model has a classifier, else the pooled features. */
  forward(x: Tensor): Tensor {
    if (!this.fc) return this.features(x);
    const fc = this.fc;
    return chain(x, (t) => this.features(t), (t) => fc.forward(t));
  }
}

/** A ResNet whose stem suits the image size (CIFAR stem at 32x32 or less). */
export function resnet(options: ResNetOptions & { imageSize?: number } = {}): ResNet {
  const { imageSize, ...rest } = options;
  const cifarStem = rest.cifarStem ?? (imageSize !== undefined && imageSize <= CIFAR_STEM_MAX_SIZE);
  return new ResNet({ ...rest, cifarStem });
}
