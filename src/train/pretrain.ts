// Stage 1: contrastive pretraining (SimCLRv2) on all images, labels unused.
import * as t from '../torch';
import type { Tensor } from '../torch';
import { SimCLRModel, type ResNetOptions } from '../models';
import { prepareModel } from '../nn';
import { LARS, scaleLearningRate, warmupCosine, type LrScaling } from '../optim';
import { isSmallImage, simclrViewOptions, type ViewOptions } from '../augment';
import { BatchLoader, seededRandom, shuffleInPlace, type ImageDataset } from '../data';
import type { Normalisation } from './normalise';
import type { StopSignal } from './control';
import type { RunFolder } from './run-folder';
import { knnAccuracy } from './knn';
import { trainLoop } from './loop';
import { pretrainStep, type PretrainState } from './steps';
import { broadcastWeights, useSyncBatchNorm, type BatchNormScope, type ProcessGroup } from '../distributed';

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
  /** With workers (absent: global, as runs recorded before it was a setting). */
  batchNorm?: BatchNormScope;
}

/** The paper's settings scaled to the data: CIFAR-sized images get temperature 0.5, weight decay 1e-4, jitter 0.5. */
export function defaultPretrainConfig(size: number, channels: 1 | 3, overrides: Partial<PretrainConfig> = {}): PretrainConfig {
  const small = isSmallImage(size);
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
  /** The compute settings in force, recorded with every checkpoint. */
  compute?: unknown;
  /**
   * Data-parallel workers: the batch size is the global batch, each worker takes its share;
   * negatives are gathered, batch norm synchronized and gradients averaged over workers.
   */
  workers?: ProcessGroup | null;
  /** With workers: compare the weights across workers after every step (a checksum). */
  checkWeights?: boolean;
  /** A new run's starting weights under the model's names (published weights); a head they lack starts fresh. */
  init?: Map<string, Tensor>;
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
export async function pretrain(r: PretrainRun): Promise<{ model: SimCLRModel; finished: boolean }> {
  const c = r.config;
  t.manualSeed(c.seed);
  const built = buildSimCLR(c);
  if (r.init && !r.resume) {
    const own = built.stateDict();
    built.loadStateDict(new Map([...r.init].filter(([k]) => own.has(k))), { strict: false });
  }
  const model = prepareModel(built);
  const group = r.workers && r.workers.worldSize > 1 ? r.workers : null;
  if (group) {
    if (c.batchSize < group.worldSize) throw new Error(`the batch (${c.batchSize}) must hold at least one image per worker (${group.worldSize} workers)`);
    // Every worker starts from rank 0's weights (the seed makes them equal already; this makes sure).
    broadcastWeights(group, model);
    if (c.batchNorm !== 'local') useSyncBatchNorm(model, group);
  }
  const shard = group ? { shard: { rank: group.rank, worldSize: group.worldSize } } : {};
  const loader = new BatchLoader(r.data, { batchSize: c.batchSize, seed: c.seed, dropLast: true, indices: sampleImages(r.data.count, c.maxImages, c.seed), ...shard });
  const optimizer = new LARS(model.namedParameters(), { lr: c.lr, momentum: 0.9, weightDecay: c.weightDecay, trustCoefficient: 0.001 });
  const perEpoch = loader.batchesPerEpoch();
  const total = c.epochs * perEpoch;
  const lrAt = warmupCosine({ peak: scaleLearningRate(c.lr, c.batchSize, c.lrScaling), warmupSteps: Math.min(c.warmupEpochs * perEpoch, total), totalSteps: total });
  const state: PretrainState = { model, optimizer, views: c.views, norm: r.norm, temperature: c.temperature, workers: group ? { group } : null };
  try {
    const finished = await trainLoop({
      stage: PRETRAIN_CHECKPOINT,
      run: r.run,
      model,
      optimizer,
      loader,
      epochs: c.epochs,
      lrAt,
      config: { ...c, compute: r.compute },
      resume: r.resume,
      stop: r.stop,
      // Views keyed by (seed, epoch, image): the same for an image on any worker.
      step: (batch, at) => pretrainStep(state, batch.images, at, { seed: c.seed, epoch: at.epoch ?? 0, indices: batch.indices }, batch.counts, batch.extents),
      workers: group,
      checkWeights: r.checkWeights,
      localStatistics: c.batchNorm === 'local',
      // The kNN monitor's encoding and votes are shared between the workers; rank 0 reports.
      afterEpoch: r.knn
        ? (epoch, step) => {
            const acc = knnAccuracy(model, r.knn!.train, r.knn!.test, r.norm, { workers: group });
            if (group && group.rank !== 0) return;
            r.run.metric({ stage: 'pretrain', epoch, step, knn_top1: acc });
            console.log(`pretrain epoch ${epoch}: kNN top-1 ${acc.toFixed(2)}%`);
          }
        : undefined,
      afterEpochOnEveryWorker: true,
    });
    return { model, finished };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    optimizer.dispose();
    loader.dispose();
  }
}
