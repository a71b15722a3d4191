// The SimCLRv2 network: an encoder and a projection head; and the fine-tuning classifier
// that starts from the encoder plus the first layer(s) of the head.
import type { Tensor } from '../torch';
import { Module } from '../nn';
import { ResNet, type ResNetOptions } from './resnet';
import { LinearClassifier, ProjectionHead, type ProjectionHeadOptions } from './heads';

export interface SimCLROptions {
  encoder?: ResNetOptions;
  head?: ProjectionHeadOptions;
}

export class SimCLRModel extends Module {
  readonly encoder: ResNet;
  readonly head: ProjectionHead;
  constructor(o: SimCLROptions = {}) {
    super();
    this.encoder = this.registerModule('encoder', new ResNet({ ...o.encoder, numClasses: undefined }));
    this.head = this.registerModule('head', new ProjectionHead(this.encoder.outputDim, { device: o.encoder?.device, dtype: o.encoder?.dtype, ...o.head }));
  }

  /** Projections z used by the contrastive loss. */
  forward(x: Tensor): Tensor {
    const h = this.encoder.features(x);
    const z = this.head.forward(h);
    h.dispose();
    return z;
  }

  /** The representation fine-tuning starts from: encoder output through the first k head layers. */
  representation(x: Tensor, fineTuneFrom = 1): Tensor {
    const h = this.encoder.features(x);
    const r = this.head.forwardUpTo(h, fineTuneFrom);
    if (r !== h) h.dispose();
    return r;
  }
}

export interface ClassifierOptions {
  /** 0 = encoder output, 1 = after the first head layer (SimCLRv2's default), up to the head's depth. */
  fineTuneFrom?: number;
  /** Zero-initialise the new linear layer. Default true. */
  zeroInit?: boolean;
}

/** Encoder + first fineTuneFrom head layers (shared with the pretrained model) + a new linear layer. */
export class Classifier extends Module {
  readonly encoder: ResNet;
  readonly head: ProjectionHead;
  readonly classifier: LinearClassifier;
  readonly fineTuneFrom: number;
  constructor(pretrained: SimCLRModel, numClasses: number, o: ClassifierOptions = {}) {
    super();
    this.fineTuneFrom = o.fineTuneFrom ?? 1;
    if (!Number.isInteger(this.fineTuneFrom) || this.fineTuneFrom < 0 || this.fineTuneFrom > pretrained.head.layers.length) {
      throw new Error(`fineTuneFrom must be an integer in 0..${pretrained.head.layers.length}, got ${o.fineTuneFrom}`);
    }
    this.encoder = this.registerModule('encoder', pretrained.encoder);
    this.head = this.registerModule('head', pretrained.head);
    const dim = pretrained.head.dimAfter(this.fineTuneFrom);
    this.classifier = this.registerModule('classifier', new LinearClassifier(dim, numClasses, { zeroInit: o.zeroInit ?? true }));
  }

  /** Parameters the classifier trains: the encoder, the head layers it uses, the new layer. */
  override namedParameters(prefix = ''): [string, Tensor][] {
    const used = new Set(Array.from({ length: this.fineTuneFrom }, (_, i) => `${prefix}head.${i}.`));
    return super.namedParameters(prefix).filter(([name]) => !name.startsWith(`${prefix}head.`) || [...used].some((u) => name.startsWith(u)));
  }

  forward(x: Tensor): Tensor {
    const h = this.encoder.features(x);
    const r = this.head.forwardUpTo(h, this.fineTuneFrom);
    if (r !== h) h.dispose();
    const logits = this.classifier.forward(r);
    r.dispose();
    return logits;
  }
}
