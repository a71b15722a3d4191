// Layers with torchvision's parameter names and PyTorch's default initialisation.
import { F, Tensor, empty, ones, zeros, type DType } from '../torch';
import { Module } from './module';
import { defaultBias_, defaultWeight_ } from './init';

type Pair = number | [number, number];

/** Where new parameters live: device 'meta' builds a model without allocating memory. */
export interface Placement {
  device?: string;
  dtype?: DType;
}

export interface Conv2dOptions extends Placement {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

/** The weights an evaluation forward uses in place of a layer's own (nn/fold.ts sets them). */
export interface InferenceParams {
  weight: Tensor;
  bias: Tensor | null;
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  /** Batch norm folded in and/or cast for inference; used in eval mode only. */
  inferenceParams: InferenceParams | null = null;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: Pair,
    readonly options: Conv2dOptions = {},
  ) {
    super();
    const [kh, kw] = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    const groups = options.groups ?? 1;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(`Conv2d: channels ${inChannels}->${outChannels} are not divisible by groups=${groups}`);
    }
    const place = { dtype: options.dtype, device: options.device };
    this.weight = this.registerParameter('weight', defaultWeight_(empty([outChannels, inChannels / groups, kh, kw], place)));
    this.bias = options.bias === false ? null : this.registerParameter('bias', defaultBias_(empty([outChannels], place), this.weight));
  }
  forward(x: Tensor): Tensor {
    const o = this.options;
    const p = !this.training && this.inferenceParams ? this.inferenceParams : this;
    return F.conv2d(x, p.weight, p.bias, { stride: o.stride, padding: o.padding, dilation: o.dilation, groups: o.groups });
  }
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  /** Batch norm folded in and/or cast for inference; used in eval mode only. */
  inferenceParams: InferenceParams | null = null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: Placement & { bias?: boolean } = {},
  ) {
    super();
    const place = { dtype: options.dtype, device: options.device };
    this.weight = this.registerParameter('weight', defaultWeight_(empty([outFeatures, inFeatures], place)));
    this.bias = options.bias === false ? null : this.registerParameter('bias', defaultBias_(empty([outFeatures], place), this.weight));
  }
  forward(x: Tensor): Tensor {
    const p = !this.training && this.inferenceParams ? this.inferenceParams : this;
    return F.linear(x, p.weight, p.bias);
  }
}

export interface BatchNormOptions extends Placement {
  eps?: number;
  momentum?: number;
  /** Learnable scale and shift. Default true. */
  affine?: boolean;
  /** With affine: keep the shift (beta). false gives a scale-only norm, as SimCLR's last head layer. Default true. */
  center?: boolean;
}

/**
 * Another way to compute a training-mode batch norm, given the layer (its weight, bias,
 * running statistics, eps and momentum): synchronized batch norm over workers
 * (distributed/sync-bn.ts) sets one on every batch norm of a model.
 */
export type BatchNormImpl = (x: Tensor, layer: BatchNorm) => Tensor;

/** Batch norm over the channel dim; BatchNorm1d and BatchNorm2d differ only in their input rank. */
export class BatchNorm extends Module {
  /** Used instead of libtorch's batch norm in training mode when set (it updates the running statistics itself). */
  trainingImpl: BatchNormImpl | null = null;
  /** Folded into the layer before it (nn/fold.ts): in eval mode the input passes through. */
  foldedAway = false;
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;
  readonly eps: number;
  readonly momentum: number;
  constructor(
    readonly numFeatures: number,
    private readonly rank: number,
    options: BatchNormOptions = {},
  ) {
    super();
    const place = { dtype: options.dtype, device: options.device };
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    const affine = options.affine ?? true;
    this.weight = affine ? this.registerParameter('weight', ones([numFeatures], place)) : null;
    this.bias = affine && options.center !== false ? this.registerParameter('bias', zeros([numFeatures], place)) : null;
    this.runningMean = this.registerBuffer('running_mean', zeros([numFeatures], place));
    this.runningVar = this.registerBuffer('running_var', ones([numFeatures], place));
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', zeros([], { dtype: 'int64', device: options.device }));
  }
  forward(x: Tensor): Tensor {
    const rank = x.ndim;
    if (rank !== this.rank && !(this.rank === 2 && rank === 3)) {
      throw new Error(`BatchNorm${this.rank === 4 ? '2d' : '1d'}: expected a ${this.rank}-d input, got [${x.shape.join(', ')}]`);
    }
    if (!this.training && this.foldedAway) return x;
    if (this.training) this.numBatchesTracked.add_(1);
    if (this.training && this.trainingImpl) return this.trainingImpl(x, this);
    return F.batchNorm(x, {
      weight: this.weight,
      bias: this.bias,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
    });
  }
}

export class BatchNorm2d extends BatchNorm {
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super(numFeatures, 4, options);
  }
}

export class BatchNorm1d extends BatchNorm {
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super(numFeatures, 2, options);
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return x.relu();
  }
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

export class MaxPool2d extends Module {
  constructor(
    readonly kernel: Pair,
    readonly options: { stride?: Pair; padding?: Pair; ceilMode?: boolean } = {},
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.maxPool2d(x, this.kernel, this.options);
  }
}

export class AvgPool2d extends Module {
  constructor(
    readonly kernel: Pair,
    readonly options: { stride?: Pair; padding?: Pair; ceilMode?: boolean; countIncludePad?: boolean } = {},
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.avgPool2d(x, this.kernel, this.options);
  }
}

export class AdaptiveAvgPool2d extends Module {
  constructor(readonly size: Pair) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.adaptiveAvgPool2d(x, this.size);
  }
}

export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
}

/** Children named '0', '1', ... as torch.nn.Sequential; intermediate results are freed as it goes. */
export class Sequential extends Module {
  readonly layers: Module[];
  /** A convolution or linear layer directly followed by a batch norm folds (nn/fold.ts). */
  batchNormPairs(): [Conv2d | Linear, BatchNorm][] {
    const pairs: [Conv2d | Linear, BatchNorm][] = [];
    this.layers.forEach((m, i) => {
      const next = this.layers[i + 1];
      if ((m instanceof Conv2d || m instanceof Linear) && next instanceof BatchNorm) pairs.push([m, next]);
    });
    return pairs;
  }
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }
  forward(x: Tensor): Tensor {
    let out = x;
    for (const layer of this.layers) {
      const next = layer.forward(out);
      // Free intermediates unless autograd may still need them through the graph (it keeps
      // its own references, so disposing our handle is always safe).
      if (out !== x && next !== out) out.dispose();
      out = next;
    }
    return out;
  }
}

