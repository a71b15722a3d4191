// The training commands: pretrain, finetune, distill, supervised, eval, pipeline, predict.
// Each is a thin layer over src/train; the run folder carries everything between them.
import { existsSync, readFileSync } from 'node:fs';
import * as t from '../torch';
import { centerCropResize } from '../augment';
import { forwardIn, prepareModel } from '../nn';
import { decodeImages, openDataset, type ImageDataset } from '../data';
import {
  PRETRAIN_CHECKPOINT,
  RunFolder,
  StopSignal,
  defaultClassifierConfig,
  evaluateClassifier,
  hasCheckpoint,
  knnAccuracy,
  linearEvaluation,
  normalise,
  pretrain,
  sampleImages,
  trainClassifier,
  writeReport,
  type ClassifierTrainConfig,
} from '../train';
import type { Flags } from './args';
import { UsageError } from './args';
import { classifierFor, stageArch, encoderFromFlags, labelTag, labeledSubset, listStages, loadClassifier, newRunConfig, openRun, parseLabels, pretrainedModel, testData, trainData, type ClassifierArch, type RunConfig } from './run-context';

function stopped(name: string): number {
  console.log(`${name} stopped; the last checkpoint is saved. Continue with --resume.`);
  return 130;
}

// ------------------------------------------------------------------ pretrain
export async function pretrainCommand(flags: Flags): Promise<number> {
  const out = flags.string('out', '');
  const resume = flags.boolean('resume');
  const spec = flags.string('data', '');
  const test = flags.string('test-data', '');
  const imageSize = flags.number('image-size', 0, { min: 0, max: 1024, integer: true });
  const epochs = flags.number('epochs', 100, { min: 1, integer: true });
  const batch = flags.number('batch', 256, { min: 1, integer: true });
  const lr = flags.number('lr', 1.0, { min: 0 });
  const seed = flags.number('seed', 0, { min: 0, integer: true });
  const knn = flags.boolean('knn');
  const maxImages = flags.number('max-images', 0, { min: 0, integer: true });
  if (!out) throw new UsageError('--out RUN (the run folder) is required');
  let config: RunConfig;
  let data: ImageDataset;
  let run: RunFolder;
  if (resume) {
    flags.rejectUnknown();
    ({ run, config } = openRun(out));
    data = await trainData(config);
  } else {
    if (!spec) throw new UsageError('--data SPEC is required (an image folder, fashion-mnist, cifar10-bin:DIR, ...)');
    if (batch < 2) throw new UsageError(`--batch must be at least 2 for NT-Xent (each image's negatives are the others), got ${batch}`);
    if (existsSync(`${out}/config.json`)) throw new UsageError(`${out} already holds a run; pass --resume to continue it or choose another --out`);
    data = await openDataset(spec, { imageSize: imageSize || undefined });
    const encoder = encoderFromFlags(flags, data);
    const temperature = flags.number('temperature', data.size <= 32 ? 0.5 : 0.1, { min: 1e-3 });
    const warmup = flags.number('warmup-epochs', epochs >= 10 ? Math.round(epochs / 10) : 0, { min: 0, integer: true });
    const cropMin = flags.number('crop-min', 0.08, { min: 0.01, max: 1 });
    const interpolation = flags.choice('interpolation', ['bicubic', 'bilinear'], 'bicubic');
    const pixelAligned = flags.yesNo('pixel-crops', false);
    flags.rejectUnknown();
    config = newRunConfig(spec, test || null, data, { encoder, epochs, batchSize: batch, lr, seed, temperature, warmupEpochs: Math.min(warmup, epochs), maxImages });
    config.pretrain.views = { ...config.pretrain.views, crop: { scale: [cropMin, 1], ratio: [3 / 4, 4 / 3], pixelAligned }, interpolation };
    run = new RunFolder(out);
    run.writeJson('config.json', config);
  }
  const pool = config.pretrain.maxImages ? Math.min(config.pretrain.maxImages, data.count) : data.count;
  console.log(`pretraining ResNet-${config.pretrain.encoder.depth} (width ${config.pretrain.encoder.width}${config.pretrain.encoder.skRatio ? ', SK' : ''}) on ${pool} images of ${data.source}, ${config.pretrain.epochs} epochs, batch ${config.pretrain.batchSize}`);
  const knnSets = knn ? { train: data, test: await testData(config) } : undefined;
  const stop = new StopSignal().listen();
  try {
    const { model, finished } = pretrain({ data, norm: config.norm, run, config: config.pretrain, resume, stop, knn: knnSets });
    model.dispose();
    return finished ? 0 : stopped('pretraining');
  } finally {
    stop.close();
  }
}

// ------------------------------------------------------------------ classifier stages
function classifierConfig(flags: Flags, defaults: Partial<ClassifierTrainConfig>): ClassifierTrainConfig {
  const base = defaultClassifierConfig(defaults);
  const cropMin = flags.number('crop-min', base.cropScale[0], { min: 0.01, max: 1 });
  return {
    ...base,
    epochs: flags.number('epochs', base.epochs, { min: 1, integer: true }),
    batchSize: flags.number('batch', base.batchSize, { min: 1, integer: true }),
    lr: flags.number('lr', base.lr, { min: 0 }),
    weightDecay: flags.number('weight-decay', base.weightDecay, { min: 0 }),
    seed: flags.number('seed', base.seed, { min: 0, integer: true }),
    cropScale: [cropMin, 1],
    dropLast: flags.yesNo('drop-last', base.dropLast),
    interpolation: flags.choice('interpolation', ['bicubic', 'bilinear'], base.interpolation),
    pixelAlignedCrops: flags.yesNo('pixel-crops', base.pixelAlignedCrops),
  };
}

async function classifierStage(
  flags: Flags,
  stage: 'finetune' | 'supervised' | 'distill',
  defaults: Partial<ClassifierTrainConfig>,
): Promise<number> {
  const from = flags.string('from', flags.string('teacher', ''));
  if (!from) throw new UsageError(stage === 'distill' ? '--teacher RUN is required' : '--from RUN is required');
  const labels = flags.string('labels', '10%');
  const labelsFile = flags.string('labels-file', '');
  const resume = flags.boolean('resume');
  const studentWidth = stage === 'distill' ? flags.number('student-width', 0, { min: 0, max: 8 }) : 0;
  const studentDepth = stage === 'distill' ? flags.number('student-depth', 0, { integer: true }) : 0;
  const maxImages = stage === 'distill' ? flags.number('max-images', 0, { min: 0, integer: true }) : 0;
  const c = classifierConfig(flags, defaults);
  flags.rejectUnknown();
  parseLabels(labels);
  const { run, config } = openRun(from);
  const data = await trainData(config);
  const subset = labeledSubset(run, data, labels, c.seed, labelsFile || undefined);
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
    const finished = trainClassifier({ stage: name, model, data, indices, norm: config.norm, run, config: c, teacher: teacher?.model, resume, stop, arch });
    if (!finished) return stopped(name);
    const test = await testData(config).catch(() => null);
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

interface Result {
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

export const finetuneCommand = (flags: Flags) => classifierStage(flags, 'finetune', { lr: 0.05, weightDecay: 0, epochs: 30 });
// The baseline trains best on whole-pixel crops (torchvision's), the SimCLR stages on
// fractional ones: each stage gets its better setting, as each has its own lr and decay.
export const supervisedCommand = (flags: Flags) => classifierStage(flags, 'supervised', { lr: 0.1, weightDecay: 5e-4, epochs: 60, pixelAlignedCrops: true });
export const distillCommand = (flags: Flags) => classifierStage(flags, 'distill', { lr: 0.1, weightDecay: 5e-4, epochs: 10 });

// ------------------------------------------------------------------ eval
export async function evalCommand(flags: Flags): Promise<number> {
  const dir = flags.string('model', '');
  const stage = flags.string('stage', '');
  const test = flags.string('test-data', '');
  const knn = flags.boolean('knn');
  const linear = flags.boolean('linear');
  const linearEpochs = flags.number('linear-epochs', 30, { min: 1, integer: true });
  flags.rejectUnknown();
  if (!dir) throw new UsageError('--model RUN is required');
  const { run, config } = openRun(dir);
  const testSet = await testData(config, test || undefined);
  if (knn || linear) {
    const model = pretrainedModel(run, config);
    const trainSet = await trainData(config);
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
export async function predictCommand(flags: Flags): Promise<number> {
  const dir = flags.string('model', '');
  const json = flags.boolean('json');
  const wanted = flags.string('stage', '');
  flags.rejectUnknown();
  const files = flags.positional;
  if (!dir) throw new UsageError('--model RUN is required');
  if (files.length === 0) throw new UsageError('name one or more image files: simclr predict --model RUN a.jpg b.png');
  const { run, config } = openRun(dir);
  const stages = listStages(run);
  const stage = wanted || stages.find((s) => s.startsWith('distill-')) || stages.find((s) => s.startsWith('finetune-')) || stages[0];
  if (!stage) throw new UsageError(`${dir}: no trained classifier to predict with`);
  const { model } = loadClassifier(run, stage);
  const { pixels } = await decodeImages(files, config.imageSize, config.channels);
  const probs = t.tidy(() => {
    model.eval();
    const x = t.fromBytes(pixels, [files.length, config.channels, config.imageSize, config.imageSize], 'uint8');
    return t.noGrad(() => forwardIn(prepareModel(model), normalise(centerCropResize(x, config.imageSize), config.norm)).softmax(1)).toArray();
  });
  const k = config.classes.length;
  const out = files.map((file, i) => {
    const row = probs.slice(i * k, (i + 1) * k);
    const best = row.indexOf(Math.max(...row));
    return { file, class: config.classes[best], probability: row[best] };
  });
  if (json) console.log(JSON.stringify({ model: `${dir}:${stage}`, predictions: out }, null, 2));
  else for (const p of out) console.log(`${p.file}: ${p.class} (${(p.probability! * 100).toFixed(1)}%)`);
  model.dispose();
  return 0;
}

// ------------------------------------------------------------------ pipeline
export async function pipelineCommand(flags: Flags, argv: string[]): Promise<number> {
  const out = flags.string('out', '');
  const labels = flags.string('labels', '1%,10%');
  if (!out) throw new UsageError('--out RUN is required');
  const known = ['data', 'test-data', 'image-size', 'model', 'depth', 'width', 'sk', 'seed', 'labels', 'out', 'resume', 'threads', 'precision', 'channels-last'];
  for (const a of argv) {
    const name = /^--([a-z-]+)/.exec(a)?.[1];
    if (name && !known.includes(name) && !/^(pretrain|finetune|distill|supervised)-/.test(name)) {
      throw new UsageError(`unknown option --${name} (stage options take the stage's prefix, e.g. --finetune-epochs 20)`);
    }
  }
  const specs = labels.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of specs) parseLabels(s);
  // Stage flags: --pretrain-epochs, --finetune-epochs, ... pass through to each stage.
  const stageArgs = (prefix: string, keep: string[]): string[] => {
    const args: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
      if (!m) continue;
      const value = m[2] ?? argv[i + 1];
      if (m[1]!.startsWith(`${prefix}-`)) args.push(`--${m[1]!.slice(prefix.length + 1)}`, value!);
      else if (keep.includes(m[1]!)) args.push(`--${m[1]}`, value!);
    }
    return args;
  };
  const { Flags: F } = await import('./args');
  const resume = flags.boolean('resume');
  // The remaining flags go to the stages, which check them (stage-prefixed: --finetune-epochs 20).
  const common = ['seed'];
  const pre = [...stageArgs('pretrain', ['data', 'test-data', 'image-size', 'model', 'depth', 'width', ...common]), '--out', out];
  if (argv.includes('--sk')) pre.push('--sk');
  const run = new RunFolder(out);
  const status = hasCheckpoint(run, PRETRAIN_CHECKPOINT) || resume ? await pretrainCommand(new F(['--out', out, '--resume'], ['resume'])) : await pretrainCommand(new F(pre, ['sk', 'knn']));
  if (status !== 0) return status;
  for (const spec of specs) {
    for (const [stage, cmd, key] of [
      ['supervised', supervisedCommand, '--from'],
      ['finetune', finetuneCommand, '--from'],
      ['distill', distillCommand, '--teacher'],
    ] as const) {
      const args = [...stageArgs(stage, common), key, out, '--labels', spec];
      if (existsSync(run.path(`${stage}-${labelTag(spec)}.json`))) args.push('--resume');
      const code = await cmd(new F(args, ['resume']));
      if (code !== 0) return code;
    }
  }
  printTable(run);
  return 0;
}

export function printTable(run: RunFolder): void {
  const file = run.path('results.json');
  if (!existsSync(file)) return;
  const { results } = JSON.parse(readFileSync(file, 'utf8')) as { results: Result[] };
  const tags = [...new Set(results.map((r) => r.stage.replace(/^[a-z]+-/, '')))];
  console.log('\ntest top-1 (%)      ' + tags.map((tg) => tg.padStart(12)).join(''));
  for (const stage of ['supervised', 'finetune', 'distill']) {
    const row = tags.map((tg) => results.find((r) => r.stage === `${stage}-${tg}`)?.top1.toFixed(2) ?? '-');
    console.log(stage.padEnd(20) + row.map((v) => v.padStart(12)).join(''));
  }
  for (const stage of ['finetune', 'distill']) {
    const row = tags.map((tg) => {
      const a = results.find((r) => r.stage === `${stage}-${tg}`);
      const b = results.find((r) => r.stage === `supervised-${tg}`);
      return a && b ? `${a.top1 - b.top1 >= 0 ? '+' : ''}${(a.top1 - b.top1).toFixed(2)}` : '-';
    });
    console.log(`${stage} margin`.padEnd(20) + row.map((v) => v.padStart(12)).join(''));
  }
  console.log(`report: ${run.path('report.html')}`);
}
