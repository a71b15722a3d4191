// Stage 1: contrastive pretraining (SimCLRv2) on all images, labels unused.
import * as t from '../torch';
import { SimCLRModel, type ResNetOptions } from '../models';
import { forwardIn, prepareModel } from '../nn';
import { LARS, scaleLearningRate, warmupCosine, type LrScaling } from '../optim';
import { simclrViewOptions, simclrViews, type ViewOptions } from '../augment';
import { ntXent } from '../losses';
import { BatchLoader, seededRandom, shuffleInPlace, type ImageDataset } from '../data';
import { normalise, type Normalisation } from './normalise';
import { saveCheckpoint, loadCheckpoint, hasCheckpoint } from './checkpoint';
import { NonFiniteLossError, type StopSignal } from './control';
import { Progress } from './progress';
import type { RunFolder } from './run-folder';
import { knnAccuracy } from './knn';

export interface PretrainConfig {
  encoder: ResNetOptions;
  headLayers: number;
  headDim: number;
  epochs: number;
  batchSize: number;
  /** LARS base rate, scaled by lrScaling. */
  lr: number;
  lrScaling: LrScaling;
  warmupEpochs: number;
  weightDecay: number;
  temperature: number;
  views: ViewOptions;
  seed: number;
  /** Pretrain on a seeded random subset of this many images (0: all). */
  maxImages: number;
}

/** The paper's settings scaled to the data: CIFAR-sized images get temperature 0.5, weight decay 1e-4, jitter 0.5. */
export function defaultPretrainConfig(size: number, channels: 1 | 3, overrides: Partial<PretrainConfig> = {}): PretrainConfig {
  const small = size <= 32;
  const epochs = overrides.epochs ?? 100;
  return {
    encoder: { depth: 18, width: 1, cifarStem: small, inChannels: channels },
    headLayers: 3,
    headDim: 128,
    epochs,
    batchSize: 256,
    lr: 1.0,
    lrScaling: 'linear',
    warmupEpochs: Math.max(epochs >= 10 ? Math.round(epochs / 10) : 0, 0),
    weightDecay: small ? 1e-4 : 1e-6,
    temperature: small ? 0.5 : 0.1,
    views: simclrViewOptions(size),
    seed: 0,
    maxImages: 0,
    ...overrides,
  };
}

export function buildSimCLR(c: PretrainConfig): SimCLRModel {
  return new SimCLRModel({ encoder: c.encoder, head: { layers: c.headLayers, outDim: c.headDim } });
}

export interface PretrainRun {
  data: ImageDataset;
  norm: Normalisation;
  run: RunFolder;
  config: PretrainConfig;
  /** Continue from the run's last pretraining checkpoint. */
  resume?: boolean;
  stop?: StopSignal;
  /** kNN monitor (k=200, T=0.1) at the end of each epoch, on these labeled sets. */
  knn?: { train: ImageDataset; test: ImageDataset };
}

export const PRETRAIN_CHECKPOINT = 'pretrain';

/** A seeded random subset of `max` of `count` images (sorted), or undefined for all. */
export function sampleImages(count: number, max: number, seed: number): number[] | undefined {
  if (!max || max >= count) return undefined;
  return shuffleInPlace(Array.from({ length: count }, (_, i) => i), seededRandom(seed + 7919))
    .slice(0, max)
    .sort((a, b) => a - b);
}

/** Trains; returns the model (the caller disposes it) and whether it ran to the end. */
export function pretrain(r: PretrainRun): { model: SimCLRModel; finished: boolean } {
  const c = r.config;
  t.manualSeed(c.seed);
  const model = prepareModel(buildSimCLR(c));
  const loader = new BatchLoader(r.data, { batchSize: c.batchSize, seed: c.seed, dropLast: true, indices: sampleImages(r.data.count, c.maxImages, c.seed) });
  const opt = new LARS(model.namedParameters(), { lr: c.lr, momentum: 0.9, weightDecay: c.weightDecay, trustCoefficient: 0.001 });
  const perEpoch = loader.batchesPerEpoch();
  const total = c.epochs * perEpoch;
  const lrAt = warmupCosine({ peak: scaleLearningRate(c.lr, c.batchSize, c.lrScaling), warmupSteps: Math.min(c.warmupEpochs * perEpoch, total), totalSteps: total });
  let epoch = 0;
  let step = 0;
  let skip = 0;
  if (r.resume && hasCheckpoint(r.run, PRETRAIN_CHECKPOINT)) {
    const meta = loadCheckpoint(r.run, PRETRAIN_CHECKPOINT, model, opt, { restoreRng: true });
    epoch = meta.epoch;
    step = meta.step;
    skip = meta.batch ?? 0;
    console.log(`resuming pretraining after epoch ${epoch} (step ${step})`);
  }
  model.train();
  try {
    for (; epoch < c.epochs; epoch++) {
      const progress = new Progress(`pretrain epoch ${epoch + 1}/${c.epochs}`, perEpoch, 'img');
      const started = performance.now();
      let k = skip;
      for (const b of loader.epoch(epoch, skip)) {
        if (r.stop?.stopped) {
          b.images.dispose();
          b.labels?.dispose();
          saveCheckpoint(r.run, PRETRAIN_CHECKPOINT, model, opt, { epoch, batch: k, step, stage: 'pretrain', config: c });
          return { model, finished: false };
        }
        const lr = lrAt(step);
        const { loss, accuracy } = t.tidy(() => {
          const [v1, v2] = simclrViews(b.images, c.views);
          const x = normalise(t.cat([v1, v2]), r.norm);
          const [z1, z2] = forwardIn(model, x).chunk(2);
          const out = ntXent(z1!, z2!, { temperature: c.temperature });
          const value = out.loss.item();
          if (!Number.isFinite(value)) throw new NonFiniteLossError('pretrain', step);
          opt.zeroGrad();
          out.loss.backward();
          opt.step(lr);
          b.images.dispose();
          b.labels?.dispose();
          return { loss: value, accuracy: out.accuracy.item() };
        });
        step++;
        k++;
        r.stop?.tick();
        const rate = ((k - skip) * c.batchSize) / ((performance.now() - started) / 1000);
        progress.update(k, k * c.batchSize, `loss ${loss.toFixed(3)} acc ${(accuracy * 100).toFixed(1)}%`);
        r.run.metric({ stage: 'pretrain', epoch: epoch + 1, step, loss, contrastive_acc: accuracy, lr, images_per_s: rate });
      }
      progress.finish();
      skip = 0;
      saveCheckpoint(r.run, PRETRAIN_CHECKPOINT, model, opt, { epoch: epoch + 1, step, stage: 'pretrain', config: c });
      if (r.knn) {
        const acc = knnAccuracy(model, r.knn.train, r.knn.test, r.norm);
        model.train();
        r.run.metric({ stage: 'pretrain', epoch: epoch + 1, step, knn_top1: acc });
        console.log(`pretrain epoch ${epoch + 1}: kNN top-1 ${acc.toFixed(2)}%`);
      }
    }
    return { model, finished: true };
  } finally {
    opt.dispose();
    loader.dispose();
  }
}
