// Supervised training and evaluation of a classifier on uint8 images held in memory.
import * as t from '../torch';
import type { Tensor } from '../torch';
import type { Module } from '../nn';
import { SGD } from '../optim';
import { Progress } from './progress';
import { normalise, type Normalisation } from './normalise';
import type { BatchLoader } from '../data';

export interface ImageSet {
  /** uint8 [N, C, H, W] */
  images: Tensor;
  /** int64 [N] */
  labels: Tensor;
}


/** Random horizontal flips, per image, as one batched op. */
export function randomFlip(x: Tensor): Tensor {
  return t.tidy(() => {
    const mask = t.bernoulliLike(t.zeros([x.shape[0]!, 1, 1, 1]), 0.5).gt(0.5);
    return t.where(mask, x.flip(3), x);
  });
}

export interface SupervisedOptions {
  epochs: number;
  /** Base learning rate, scaled by batch/256. Default 0.1. */
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  norm: Normalisation;
  /** Called after every epoch with the mean loss. */
  onEpoch?: (epoch: number, loss: number) => void;
  /** Polled between steps; returning true stops training early. */
  shouldStop?: () => boolean;
}

/** SGD (Nesterov) with cosine decay over all steps; returns the number of epochs completed. */
export function trainSupervised(model: Module, loader: BatchLoader, o: SupervisedOptions): number {
  const batch = loader.options.batchSize;
  const stepsPerEpoch = loader.batchesPerEpoch();
  const total = o.epochs * stepsPerEpoch;
  const baseLr = (o.lr ?? 0.1) * (batch / 256);
  const opt = new SGD(model.parameters(), { lr: baseLr, momentum: o.momentum ?? 0.9, weightDecay: o.weightDecay ?? 5e-4, nesterov: true });
  model.train();
  let step = 0;
  try {
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const progress = new Progress(`epoch ${epoch + 1}/${o.epochs}`, stepsPerEpoch, 'img');
      let lossSum = 0;
      let seen = 0;
      let s = 0;
      for (const b of loader.epoch(epoch)) {
        if (o.shouldStop?.()) {
          b.images.dispose();
          b.labels?.dispose();
          return epoch;
        }
        const lr = 0.5 * baseLr * (1 + Math.cos((Math.PI * step) / total));
        const loss = t.tidy(() => {
          const x = randomFlip(normalise(b.images, o.norm));
          const l = t.F.crossEntropy(model.forward(x), b.labels!);
          opt.zeroGrad();
          l.backward();
          opt.step(lr);
          b.images.dispose();
          b.labels!.dispose();
          return l.item();
        });
        lossSum += loss;
        seen += b.indices.length;
        step++;
        progress.update(++s, seen, `loss ${loss.toFixed(3)}`);
      }
      progress.finish();
      o.onEpoch?.(epoch + 1, lossSum / stepsPerEpoch);
    }
    return o.epochs;
  } finally {
    opt.dispose();
  }
}

/** Top-1 and top-5 accuracy (in %) in eval mode. */
export function evaluate(model: Module, data: ImageSet, norm: Normalisation, batchSize = 500): { top1: number; top5: number } {
  model.eval();
  const n = data.images.shape[0]!;
  let top1 = 0;
  let top5 = 0;
  const progress = new Progress('evaluating', n, 'img');
  t.noGrad(() => {
    for (let start = 0; start < n; start += batchSize) {
      t.tidy(() => {
        const end = Math.min(n, start + batchSize);
        const logits = model.forward(normalise(data.images.slice(0, start, end), norm));
        const labels = data.labels.slice(0, start, end).unsqueeze(1);
        const k = Math.min(5, logits.shape[1]!);
        const hits = logits.topk(k, 1).indices.eq(labels);
        top1 += hits.slice(1, 0, 1).sum().item();
        top5 += hits.sum().item();
        progress.update(end, end);
      });
    }
  });
  progress.finish();
  model.train();
  return { top1: (100 * top1) / n, top5: (100 * top5) / n };
}
