// NT-Xent (normalised temperature-scaled cross-entropy), SimCLR's contrastive loss.
import * as t from '../torch';
import type { Tensor } from '../torch';

/** Brings in the embeddings of the other workers: all of them, and where ours start. */
export type GatherFn = (local: Tensor) => { all: Tensor; offset: number };

export interface NTXentOptions {
  /** Default 0.1 (the paper's ImageNet setting; 0.5 for CIFAR). */
  temperature?: number;
  /** Negatives from all workers (data-parallel training). Default: this worker's batch only. */
  gather?: GatherFn;
  /** Extra negatives, e.g. a memory queue [K, D] (normalised here). */
  queue?: Tensor | null;
}

export interface NTXentResult {
  /**
   * The official code's scale: the sum of the two directions' means (twice the paper's L,
   * the mean over the 2N views). LARS's weight decay and its unscaled parameters (batch
   * norm, biases) see the loss's scale, so the paper's hyper-parameters assume this one.
   */
  loss: Tensor;
  /** Fraction of views whose most similar candidate is their sibling (a by-product, 0..1). */
  accuracy: Tensor;
}

const SELF_MASK = -1e9;

/**
 * z1[i] and z2[i] are the projections of two views of image i. Each view's positive is its
 * sibling; every other view (and the queue) is a negative; self-similarity is masked out.
 */
export function ntXent(z1: Tensor, z2: Tensor, o: NTXentOptions = {}): NTXentResult {
  return t.tidy(() => {
    const temperature = o.temperature ?? 0.1;
    if (!(temperature > 0)) throw new Error(`ntXent: temperature must be positive, got ${temperature}`);
    const wide = (x: Tensor): Tensor => (x.dtype === 'bfloat16' || x.dtype === 'float16' ? x.to('float32') : x);
    const h1 = t.F.normalize(wide(z1), { dim: 1 });
    const h2 = t.F.normalize(wide(z2), { dim: 1 });
    const gather = o.gather ?? ((local: Tensor) => ({ all: local, offset: 0 }));
    const g1 = gather(h1);
    const g2 = gather(h2);
    const n = h1.shape[0]!;
    const total = g1.all.shape[0]!;
    const labels = t.arange(g1.offset, g1.offset + n, 1, { device: h1.device });
    const self = labels.oneHot(total).gt(0);
    const scale = 1 / temperature;
    const sim = (a: Tensor, b: Tensor): Tensor => a.matmul(b.T).mul(scale);
    const queue = o.queue ? t.F.normalize(wide(o.queue), { dim: 1 }) : null;
    const rows = (h: Tensor, sibling: Tensor, same: Tensor): Tensor =>
      t.cat([sim(h, sibling), sim(h, same).maskedFill(self, SELF_MASK), ...(queue ? [sim(h, queue)] : [])], 1);
    const logitsA = rows(h1, g2.all, g1.all);
    const logitsB = rows(h2, g1.all, g2.all);
    const loss = t.F.crossEntropy(logitsA, labels).add(t.F.crossEntropy(logitsB, labels));
    const hits = logitsA.argmax(1).eq(labels).to(loss.dtype).mean().add(logitsB.argmax(1).eq(labels).to(loss.dtype).mean()).div(2);
    return { loss, accuracy: hits };
  });
}
