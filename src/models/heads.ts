// SimCLRv2's projection head and the classifiers built on it.
import type { Tensor } from '../torch';
import { BatchNorm, BatchNorm1d, Linear, Module, init, type Placement } from '../nn';

/** Linear (no bias: the batch norm after it has one) + batch norm, ReLU unless last. */
export class HeadLayer extends Module {
  readonly linear: Linear;
  readonly bn: BatchNorm1d;
  constructor(
    inDim: number,
    outDim: number,
    readonly relu: boolean,
    place: Placement = {},
  ) {
    super();
    this.linear = this.registerModule('linear', new Linear(inDim, outDim, { bias: false, ...place }));
    // The last layer's norm has no shift, as the official code (no bias anywhere at the output).
    this.bn = this.registerModule('bn', new BatchNorm1d(outDim, { center: relu, ...place }));
  }
  batchNormPairs(): [Linear, BatchNorm][] {
    return [[this.linear, this.bn]];
  }
  forward(x: Tensor): Tensor {
    const a = this.linear.forward(x);
    const b = this.bn.forward(a);
    if (b !== a) a.dispose(); // a folded norm passes a through
    return this.relu ? b.relu_() : b;
  }
}

export interface ProjectionHeadOptions extends Placement {
  /** Number of layers. Default 3 (SimCLRv2; SimCLRv1 used 2). */
  layers?: number;
  /** Hidden width. Default: the encoder's output width. */
  hiddenDim?: number;
  /** Output width. Default 128. */
  outDim?: number;
}

export class ProjectionHead extends Module {
  readonly layers: HeadLayer[];
  constructor(
    readonly inDim: number,
    o: ProjectionHeadOptions = {},
  ) {
    super();
    const depth = o.layers ?? 3;
    if (!Number.isInteger(depth) || depth < 1) throw new Error(`ProjectionHead: layers must be a positive integer, got ${depth}`);
    const hidden = o.hiddenDim ?? inDim;
    const out = o.outDim ?? 128;
    const place = { device: o.device, dtype: o.dtype };
    this.layers = [];
    for (let i = 0; i < depth; i++) {
      const last = i === depth - 1;
      const layer = new HeadLayer(i === 0 ? inDim : hidden, last ? out : hidden, !last, place);
      this.layers.push(this.registerModule(String(i), layer));
    }
  }

  /** Width after the first k layers (k = 0: the encoder's output). */
  dimAfter(k: number): number {
    return k === 0 ? this.inDim : this.layers[k - 1]!.linear.outFeatures;
  }

  /** The first k layers only: SimCLRv2 fine-tunes from the middle of the head. */
  forwardUpTo(x: Tensor, k: number): Tensor {
    if (!Number.isInteger(k) || k < 0 || k > this.layers.length) {
      throw new Error(`fineTuneFrom must be an integer in 0..${this.layers.length}, got ${k}`);
    }
    let out = x;
    for (let i = 0; i < k; i++) {
      const next = this.layers[i]!.forward(out);
      if (out !== x) out.dispose();
      out = next;
    }
    return out;
  }

  forward(x: Tensor): Tensor {
    return this.forwardUpTo(x, this.layers.length);
  }
}

/** A linear classifier; zero-initialised (as SimCLRv2 when fine-tuning) unless asked otherwise. */
export class LinearClassifier extends Module {
  readonly linear: Linear;
  constructor(inDim: number, numClasses: number, { zeroInit = true, ...place }: Placement & { zeroInit?: boolean } = {}) {
    super();
    this.linear = this.registerModule('linear', new Linear(inDim, numClasses, place));
    if (zeroInit) {
      init.zeros_(this.linear.weight);
      init.zeros_(this.linear.bias!);
    }
  }
  forward(x: Tensor): Tensor {
    return this.linear.forward(x);
  }
}
