// The training commands: pretrain, finetune, distill, supervised, eval, pipeline, predict.
// Each is a thin layer over src/train; the run folder carries everything between them.
import { existsSync, readFileSync } from 'node:fs';
import * as t from '../torch';
import { centerCropResize } from '../augment';
import { forwardIn, prepareModel } from '../nn';
import { decodeImages, openDataset, type ImageDataset, type OpenedDataset } from '../data';
import {
  RunFolder,
  StopSignal,
  defaultClassifierConfig,
  evaluateClassifier,
  knnAccuracy,
  linearEvaluation,
  normalise,
  pretrain,
  sampleImages,
  trainClassifier,
  writeReport,
  type ClassifierTrainConfig,
} from '../train';
import { UsageError, type Parsed } from './options';
import type { ClassifierTable, distillOptions, finetuneOptions, pretrainOptions, supervisedOptions, COMMANDS } from './specs';
import { classifierFor, stageArch, encoderOptions, labelTag, labeledSubset, listStages, loadClassifier, newRunConfig, openRun, parseLabels, pretrainedModel, testData, trainData, type ClassifierArch, type RunConfig } from './run-context';
import { argmax } from '../util/extent';
import { channelsOption, reportSkipped, skippedLine } from './images';

export type PretrainOptions = Parsed<typeof pretrainOptions>;
export type FinetuneOptions = Parsed<typeof finetuneOptions>;
export type SupervisedOptions = Parsed<typeof supervisedOptions>;
export type DistillOptions = Parsed<typeof distillOptions>;
type ClassifierOptions = Parsed<ClassifierTable>;

function stopped(name: string): number {
  console.log(`${name} stopped; the last checkpoint is saved. Continue with --resume.`);
  return 130;
}

// ------------------------------------------------------------------ pretrain
export async function pretrainCommand({ values: o }: { values: PretrainOptions }): Promise<number> {
  if (!o.out) throw new UsageError('--out RUN (the run folder) is required');
  let config: RunConfig;
  let data: ImageDataset;
  let run: RunFolder;
  if (o.resume) {
    ({ run, config } = openRun(o.out));
    data = await trainData(config, o.skipBadImages);
  } else {
    if (!o.data) throw new UsageError('--data SPEC is required (an image folder, fashion-mnist, cifar10-bin:DIR, ...)');
    if (existsSync(`${o.out}/config.json`)) throw new UsageError(`${o.out} already holds a run; pass --resume to continue it or choose another --out`);
    const opened: OpenedDataset = await openDataset(o.data, { imageSize: o.imageSize, channels: channelsOption(o.channels), skipBad: o.skipBadImages });
    data = opened;
    const encoder = encoderOptions(o, data);
    const warmup = o.warmupEpochs ?? (o.epochs >= 10 ? Math.round(o.epochs / 10) : 0);
    config = newRunConfig(o.data, o.testData ?? null, opened, {
      encoder,
      epochs: o.epochs,
      batchSize: o.batch,
      lr: o.lr,
      seed: o.seed,
      temperature: o.temperature ?? (data.size <= 32 ? 0.5 : 0.1),
      warmupEpochs: Math.min(warmup, o.epochs),
      maxImages: o.maxImages,
    }, o.skipBadImages);
    config.pretrain.views = { ...config.pretrain.views, crop: { scale: [o.cropMin, 1], ratio: [3 / 4, 4 / 3], pixelAligned: o.pixelCrops }, interpolation: o.interpolation };
    run = new RunFolder(o.out);
    run.writeJson('config.json', config);
    console.log(`${data.source}: ${data.size}x${data.size}, ${data.channels === 1 ? 'gray' : 'RGB'} (size: ${opened.auto.imageSize}; channels: ${opened.auto.channels})`);
  }
  reportSkipped(data);
  const resume = o.resume;
  const knn = o.knn;
  const pool = config.pretrain.maxImages ? Math.min(config.pretrain.maxImages, data.count) : data.count;
  console.log(`pretraining ResNet-${config.pretrain.encoder.depth} (width ${config.pretrain.encoder.width}${config.pretrain.encoder.skRatio ? ', SK' : ''}) on ${pool} images of ${data.source}, ${config.pretrain.epochs} epochs, batch ${config.pretrain.batchSize}`);
  const knnSets = knn ? { train: data, test: await testData(config, undefined, o.skipBadImages) } : undefined;
  const stop = new StopSignal().listen();
  try {
    const { model, finished } = await pretrain({ data, norm: config.norm, run, config: config.pretrain, resume, stop, knn: knnSets });
    model.dispose();
    return finished ? 0 : stopped('pretraining');
  } finally {
    stop.close();
  }
}

// ------------------------------------------------------------------ classifier stages
function classifierConfig(o: ClassifierOptions): ClassifierTrainConfig {
  return {
    ...defaultClassifierConfig(),
    epochs: o.epochs,
    batchSize: o.batch,
    lr: o.lr,
    weightDecay: o.weightDecay,
    seed: o.seed,
    cropScale: [o.cropMin, 1],
    dropLast: o.dropLast,
    interpolation: o.interpolation,
    pixelAlignedCrops: o.pixelCrops,
  };
}

async function classifierStage(stage: 'finetune' | 'supervised' | 'distill', o: ClassifierOptions & { from?: string }): Promise<number> {
  const { from, labels, resume } = o;
  if (!from) throw new UsageError(stage === 'distill' ? '--teacher RUN is required' : '--from RUN is required');
  const distill = stage === 'distill' ? (o as DistillOptions) : null;
  const studentWidth = distill?.studentWidth ?? 0;
  const studentDepth = distill?.studentDepth ?? 0;
  const maxImages = distill?.maxImages ?? 0;
  const c = classifierConfig(o);
  parseLabels(labels);
  const { run, config } = openRun(from);
  const data = await trainData(config, o.skipBadImages);
  reportSkipped(data);
  const subset = labeledSubset(run, data, labels, c.seed, o.labelsFile || undefined);
  const tag = labelTag(labels);
  const name = `${stage}-${tag}`;
  const numClasses = data.classes.length;
  const baseArch: ClassifierArch = { encoder: config.pretrain.encoder, headLayers: config.pretrain.headLayers, headDim: config.pretrain.headDim, fineTuneFrom: 1, numClasses };
  let model;
  let teacher;
  let arch = baseArch;
  if (stage === 'finetune') {
    const pre = pretrainedModel(run, config);
    model = classifierFor(arch, pre);
  } else if (stage === 'supervised') {
    t.manualSeed(c.seed);
    model = classifierFor(arch);
  } else {
    const teacherStage = `finetune-${tag}`;
    const teacherArch = stageArch(run, teacherStage);
    if (teacherArch.numClasses !== numClasses) {
      throw new UsageError(`the teacher ${from}:${teacherStage} has ${teacherArch.numClasses} classes, but ${data.source} has ${numClasses}`);
    }
    teacher = loadClassifier(run, teacherStage);
    arch = { ...baseArch, encoder: { ...baseArch.encoder, ...(studentDepth ? { depth: studentDepth as 18 } : {}), ...(studentWidth ? { width: studentWidth } : {}) } };
    t.manualSeed(c.seed);
    model = classifierFor(arch);
  }
  const indices = stage === 'distill' ? sampleImages(data.count, maxImages, c.seed) : subset;
  console.log(`${name}: ${indices ? indices.length : data.count} images (${subset.length} labeled), ${c.epochs} epochs, lr ${c.lr}`);
  const stop = new StopSignal().listen();
  const started = performance.now();
  try {
    const finished = await trainClassifier({ stage: name, model, data, indices, norm: config.norm, run, config: c, teacher: teacher?.model, resume, stop, arch });
    if (!finished) return stopped(name);
    const test = await testData(config, undefined, o.skipBadImages).catch((e: unknown) => {
      if (e instanceof UsageError) return null; // no test split: the stage has no test result
      throw e;
    });
    if (test) {
      const acc = evaluateClassifier(model, test, config.norm);
      recordResult(run, name, acc, c, subset.length, (performance.now() - started) / 1000);
      console.log(`${name}: test top-1 ${acc.top1.toFixed(2)}%, top-5 ${acc.top5.toFixed(2)}%`);
    }
    return 0;
  } finally {
    stop.close();
    model.dispose();
    teacher?.model.dispose();
  }
}

export interface Result {
  stage: string;
  top1: number;
  top5: number;
  labeled: number;
  epochs: number;
  lr: number;
  /** Forward-pass precision the stage trained in. */
  precision: t.Precision;
  /** Wall time of this stage's training (and evaluation), this session. */
  seconds: number;
}

function recordResult(run: RunFolder, stage: string, acc: { top1: number; top5: number }, c: ClassifierTrainConfig, labeled: number, seconds: number): void {
  const file = run.path('results.json');
  const results: Result[] = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { results: Result[] }).results : [];
  const next = results.filter((r) => r.stage !== stage);
  next.push({ stage, top1: acc.top1, top5: acc.top5, labeled, epochs: c.epochs, lr: c.lr, precision: t.computeSettings().precision, seconds: Math.round(seconds) });
  run.writeJson('results.json', { results: next });
  writeReport(run);
}

// Each stage's defaults (epochs, lr, decay, crops) are in its option table (specs.ts).
export const finetuneCommand = ({ values }: { values: FinetuneOptions }) => classifierStage('finetune', values);
export const supervisedCommand = ({ values }: { values: SupervisedOptions }) => classifierStage('supervised', values);
export const distillCommand = ({ values }: { values: DistillOptions }) => classifierStage('distill', { ...values, from: values.teacher });

// ------------------------------------------------------------------ eval
export async function evalCommand({ values: o }: { values: Parsed<typeof COMMANDS.eval.options> }): Promise<number> {
  const { model: dir, knn, linear, linearEpochs } = o;
  const stage = o.stage ?? '';
  if (!dir) throw new UsageError('--model RUN is required');
  const { run, config } = openRun(dir);
  const testSet = await testData(config, o.testData, o.skipBadImages);
  reportSkipped(testSet);
  if (knn || linear) {
    const model = pretrainedModel(run, config);
    const trainSet = await trainData(config, o.skipBadImages);
    if (knn) {
      const acc = knnAccuracy(model, trainSet, testSet, config.norm);
      console.log(`pretrained encoder: kNN (k=200, T=0.1) top-1 ${acc.toFixed(2)}% on ${testSet.count} images`);
    }
    if (linear) {
      const acc = linearEvaluation(model, trainSet, testSet, config.norm, { epochs: linearEpochs });
      console.log(`pretrained encoder: linear evaluation (frozen, all ${trainSet.count} training labels, ${linearEpochs} epochs) top-1 ${acc.toFixed(2)}% on ${testSet.count} images`);
    }
    model.dispose();
  }
  const stages = stage ? [stage] : listStages(run);
  for (const s of stages) {
    const { model } = loadClassifier(run, s);
    const acc = evaluateClassifier(model, testSet, config.norm);
    console.log(`${s}: top-1 ${acc.top1.toFixed(2)}%, top-5 ${acc.top5.toFixed(2)}% on ${testSet.count} images`);
    model.dispose();
  }
  if (!knn && !linear && stages.length === 0) throw new UsageError(`${dir}: no trained classifier yet (run simclr finetune --from ${dir}), or pass --knn`);
  return 0;
}

// ------------------------------------------------------------------ predict
export async function predictCommand({ values: o, positionals }: { values: Parsed<typeof COMMANDS.predict.options>; positionals: string[] }): Promise<number> {
  const { model: dir, json } = o;
  const wanted = o.stage ?? '';
  if (!dir) throw new UsageError('--model RUN is required');
  if (positionals.length === 0) throw new UsageError('name one or more image files: simclr predict --model RUN a.jpg b.png');
  const { run, config } = openRun(dir);
  const stages = listStages(run);
  const stage = wanted || stages.find((s) => s.startsWith('distill-')) || stages.find((s) => s.startsWith('finetune-')) || stages[0];
  if (!stage) throw new UsageError(`${dir}: no trained classifier to predict with`);
  const { model } = loadClassifier(run, stage);
  const decoded = await decodeImages(positionals, config.imageSize, config.channels, { skipBad: o.skipBadImages });
  const badSet = new Set(decoded.bad);
  const files = positionals.filter((_, i) => !badSet.has(i));
  if (decoded.bad.length) console.error(skippedLine(decoded.bad.map((i) => positionals[i]!)));
  if (files.length === 0) throw new Error('none of the images could be decoded');
  const frame = config.channels * config.imageSize * config.imageSize;
  const pixels = badSet.size ? concatFrames(decoded.pixels, frame, positionals.length, badSet) : decoded.pixels;
  const probs = t.tidy(() => {
    model.eval();
    const x = t.fromBytes(pixels, [files.length, config.channels, config.imageSize, config.imageSize], 'uint8');
    return t.noGrad(() => forwardIn(prepareModel(model), normalise(centerCropResize(x, config.imageSize), config.norm)).softmax(1)).toArray();
  });
  const k = config.classes.length;
  const out = files.map((file, i) => {
    const best = argmax(probs, i * k, (i + 1) * k);
    return { file, class: config.classes[best], probability: probs[i * k + best] };
  });
  if (json) console.log(JSON.stringify({ model: `${dir}:${stage}`, predictions: out }, null, 2));
  else for (const p of out) console.log(`${p.file}: ${p.class} (${(p.probability! * 100).toFixed(1)}%)`);
  model.dispose();
  return 0;
}

/** The frames of `pixels` whose index is not in `drop`, packed. */
function concatFrames(pixels: Uint8Array, frame: number, count: number, drop: Set<number>): Uint8Array {
  const out = new Uint8Array((count - drop.size) * frame);
  let k = 0;
  for (let i = 0; i < count; i++) if (!drop.has(i)) out.set(pixels.subarray(i * frame, (i + 1) * frame), frame * k++);
  return out;
}
