// Stages 2 and 3, and the baseline: training a classifier with SGD on crop + flip views,
// against labels (fine-tuning, supervised baseline) or a frozen teacher's outputs
// (distillation); and its top-1 / top-5 evaluation.
import * as t from '../torch';
import { forwardIn, prepareModel, type Module } from '../nn';
import { SGD, warmupCosine } from '../optim';
import { centerCropResize, fineTuneViewOptions, simclrView, type ViewOptions } from '../augment';
import { crossEntropy, distillationLoss } from '../losses';
import { BatchLoader, imagesTensor, type ImageDataset } from '../data';
import { normalise, type Normalisation } from './normalise';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { NonFiniteLossError, type StopSignal } from './control';
import { Progress } from './progress';
import type { RunFolder } from './run-folder';

export interface ClassifierTrainConfig {
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
  /** Crop area range of the crop + flip views. */
  cropScale: [number, number];
  seed: number;
  dropLast: boolean;
  /** Distillation: softmax temperature of teacher and student. */
  temperature: number;
  /** Resampling of the crops. */
  interpolation: 'bicubic' | 'bilinear';
  /** Whole-pixel crop boxes, as torchvision draws them. */
  pixelAlignedCrops: boolean;
}

export function defaultClassifierConfig(overrides: Partial<ClassifierTrainConfig> = {}): ClassifierTrainConfig {
  return { epochs: 30, batchSize: 256, lr: 0.05, momentum: 0.9, weightDecay: 0, nesterov: true, cropScale: [0.08, 1], seed: 0, dropLast: false, temperature: 1, interpolation: 'bicubic', pixelAlignedCrops: false, ...overrides };
}

export interface ClassifierRun {
  stage: string;
  model: Module;
  data: ImageDataset;
  /** images to train on (a labeled subset); all when omitted */
  indices?: number[];
  norm: Normalisation;
  run: RunFolder;
  config: ClassifierTrainConfig;
  /** A frozen teacher: the student learns its softmax on the same views (distillation). */
  teacher?: Module;
  resume?: boolean;
  stop?: StopSignal;
  /** Saved with each checkpoint so the model can be rebuilt (its architecture). */
  arch?: unknown;
}

/** Trains; checkpoints as `stage` after every epoch. Returns whether it ran to the end. */
export function trainClassifier(r: ClassifierRun): boolean {
  const c = r.config;
  prepareModel(r.model);
  if (r.teacher) prepareModel(r.teacher);
  const loader = new BatchLoader(r.data, { batchSize: Math.min(c.batchSize, (r.indices ?? r.data.ids).length), seed: c.seed, dropLast: c.dropLast, indices: r.indices });
  const opt = new SGD(r.model.namedParameters(), { lr: c.lr, momentum: c.momentum, weightDecay: c.weightDecay, nesterov: c.nesterov });
  const perEpoch = loader.batchesPerEpoch();
  const lrAt = warmupCosine({ peak: c.lr, warmupSteps: 0, totalSteps: c.epochs * perEpoch });
  const views: ViewOptions = { ...fineTuneViewOptions(r.data.size), crop: { scale: c.cropScale, ratio: [3 / 4, 4 / 3], pixelAligned: c.pixelAlignedCrops }, interpolation: c.interpolation };
  if (!r.teacher && !r.data.labels) throw new Error(`${r.stage}: ${r.data.source} has no labels`);
  let epoch = 0;
  let step = 0;
  let skip = 0;
  if (r.resume && hasCheckpoint(r.run, r.stage)) {
    const meta = loadCheckpoint(r.run, r.stage, r.model, opt, { restoreRng: true });
    epoch = meta.epoch;
    step = meta.step;
    skip = meta.batch ?? 0;
    console.log(`resuming ${r.stage} after epoch ${epoch}`);
  }
  r.teacher?.eval();
  r.model.train();
  try {
    for (; epoch < c.epochs; epoch++) {
      const progress = new Progress(`${r.stage} epoch ${epoch + 1}/${c.epochs}`, perEpoch, 'img');
      const started = performance.now();
      let k = skip;
      let seen = 0;
      for (const b of loader.epoch(epoch, skip)) {
        if (r.stop?.stopped) {
          b.images.dispose();
          b.labels?.dispose();
          saveCheckpoint(r.run, r.stage, r.model, opt, { epoch, batch: k, step, stage: r.stage, config: { ...c, arch: r.arch } });
          return false;
        }
        const lr = lrAt(step);
        const loss = t.tidy(() => {
          const x = normalise(simclrView(b.images, views), r.norm);
          const logits = forwardIn(r.model, x);
          // Distillation learns the teacher's outputs only: the data set's own labels may
          // cover every image, and only the labeled subset may be used.
          const l = r.teacher ? distillationLoss(logits, t.noGrad(() => forwardIn(r.teacher!, x)), { temperature: c.temperature }) : crossEntropy(logits, b.labels!);
          const value = l.item();
          if (!Number.isFinite(value)) throw new NonFiniteLossError(r.stage, step);
          opt.zeroGrad();
          l.backward();
          opt.step(lr);
          b.images.dispose();
          b.labels?.dispose();
          return value;
        });
        step++;
        k++;
        r.stop?.tick();
        seen += b.indices.length;
        progress.update(k, seen, `loss ${loss.toFixed(3)}`);
        r.run.metric({ stage: r.stage, epoch: epoch + 1, step, loss, lr, images_per_s: seen / ((performance.now() - started) / 1000) });
      }
      progress.finish();
      skip = 0;
      saveCheckpoint(r.run, r.stage, r.model, opt, { epoch: epoch + 1, step, stage: r.stage, config: { ...c, arch: r.arch } });
    }
    return true;
  } finally {
    opt.dispose();
    loader.dispose();
  }
}

/** Top-1 and top-5 accuracy (%) on a labeled set: centre crop (whole image at 32px or less), eval mode. */
export function evaluateClassifier(model: Module, ds: ImageDataset, norm: Normalisation, batch = 500): { top1: number; top5: number } {
  if (!ds.labels) throw new Error(`${ds.source} has no labels to evaluate against`);
  prepareModel(model).eval();
  let top1 = 0;
  let top5 = 0;
  t.noGrad(() => {
    for (let start = 0; start < ds.count; start += batch) {
      t.tidy(() => {
        const end = Math.min(ds.count, start + batch);
        const images = imagesTensor(ds, start, end);
        const logits = forwardIn(model, normalise(centerCropResize(images, ds.size), norm));
        const labels = t.tensor(Float64Array.from(ds.labels!.subarray(start, end)), undefined, { dtype: 'int64' }).unsqueeze(1);
        const hits = logits.topk(Math.min(5, logits.shape[1]!), 1).indices.eq(labels);
        top1 += hits.slice(1, 0, 1).sum().item();
        top5 += hits.sum().item();
      });
    }
  });
  model.train();
  return { top1: (100 * top1) / ds.count, top5: (100 * top5) / ds.count };
}
