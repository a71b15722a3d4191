// Runs as typed plans: what to train, on what, with which settings. A plan holds only what
// its author chose; everything else comes from the stage's defaults (defaults.ts). Resuming
// a stage checks the plan against what the run recorded, so the command that started a
// run, plus --resume, continues it.
import { existsSync, readFileSync } from 'node:fs';
import * as t from '../torch';
import { isSmallImage } from '../augment';
import { openDataset, openInputs, skippedLine, writeSubsetFile, type ImageDataset, type OpenedDataset } from '../data';
import { asPlanError, isInputsDataset, labelSetTag, openTrainImages, splitUserLabels } from './data';
import {
  RunFolder,
  defaultClassifierConfig,
  holdStopSignal,
  releaseStopSignal,
  evaluateClassifier,
  hasCheckpoint,
  pretrain,
  sampleImages,
  trainClassifier,
  PRETRAIN_CHECKPOINT,
  type ClassifierTrainConfig,
} from '../train';
import { CLASSIFIER_DEFAULTS, PRETRAIN_DEFAULTS, defaultPretrainLr } from './defaults';
import { PlanError } from './errors';
import {
  classifierFor,
  encoderFor,
  labelTag,
  labeledSubset,
  validationSubset,
  loadClassifier,
  newRunConfig,
  openRun,
  parseLabels,
  pretrainedModel,
  stageArch,
  testData,
  trainData,
  type ClassifierArch,
  type RecordedCompute,
  type RunConfig,
} from './folder';
import { recordResult, stageMeta } from './results';
import { buildReport } from './report';
import type { ProcessGroup } from '../distributed';
import { isLead, leadProcess, stopAgreed, withWorkers, type WorkersPlan } from './workers';
import { workerDevice } from '../distributed/env';
import type { ResNetOptions } from '../models';

export type ClassifierKind = 'finetune' | 'supervised' | 'distill';

/** How a run computes; resuming under other settings than the recorded ones is refused unless forced. */
export interface ComputePlan {
  precision?: 'fp32' | 'bf16' | 'auto';
  channelsLast?: 'on' | 'off' | 'auto';
  /** intra-op threads (default: the process's) */
  threads?: number;
  /** 'cpu' (default), 'cuda' (this worker's LOCAL_RANK's GPU) or 'cuda:N' */
  device?: string;
  /** Resume even where the settings differ from the recorded ones. */
  force?: boolean;
}

export interface DataPlan {
  /** An image folder, fashion-mnist[:DIR], mnist:DIR, cifar10-bin:DIR or cifar100-bin:DIR (or unlabeled/labeled instead). */
  spec: string;
  /** Folders of unlabeled images (flat or nested), instead of spec. */
  unlabeled?: string[];
  /** A labeled folder (class subfolders) or CSV (path,label), with or instead of unlabeled. */
  labeled?: string;
  /** The test set (default: the source's test split). */
  test?: string;
  imageSize?: number | 'auto';
  channels?: 1 | 3 | 'auto';
}

export interface EncoderPlan {
  depth: number;
  width: number;
  sk: boolean;
  /** The last batch norm of each residual block starts at zero scale (the official init_zero; off by default: it scored lower on validation). */
  zeroInitResidual: boolean;
}

export interface PretrainSettings {
  epochs: number;
  batch: number;
  /** LARS base rate, times batch/256 (linear) or sqrt(batch) (sqrt). Default: 1.0 for small images; else the paper's 0.3 (linear) or 0.075 (sqrt). */
  lr?: number;
  lrScaling: 'linear' | 'sqrt';
  /** Default: 0.5 for small images, else 0.1. */
  temperature?: number;
  /** Default: a tenth of the epochs (0 under 10). */
  warmupEpochs?: number;
  cropMin: number;
  maxImages: number;
  interpolation: 'bicubic' | 'bilinear';
  pixelCrops: boolean;
  seed: number;
  /** kNN monitor after each epoch (not a training setting: may change on resume). */
  knn: boolean;
}

export interface PretrainPlan {
  out: string;
  /** Continue the run in `out`; settings given here must match the recorded ones. */
  resume?: boolean;
  /** Required for a new run (a resume may repeat it). */
  data?: Partial<DataPlan>;
  encoder?: Partial<EncoderPlan>;
  settings?: Partial<PretrainSettings>;
  skipBadImages?: boolean;
  compute?: ComputePlan;
}

export interface ClassifierSettings {
  /** 1%, 10%, a fraction such as 0.1, or N/class. */
  labels: string;
  /** The user's labeled images: a folder of class subfolders or a CSV (path,label); every one is used. */
  labeled?: string;
  /** The classes (a,b,c or a folder of class subfolders), when some may have no labeled image yet. */
  classes?: string;
  /** Reuse a list of labeled image ids instead of drawing one. */
  labelsFile?: string;
  /**
   * The validation split held out of the training images ('10%', '0.1', '500' images, or
   * '0' for none; at most 5,000): never trained on as labels, reported after each epoch.
   */
  val: string;
  /** Reuse a list of validation image ids. */
  valFile?: string;
  epochs: number;
  batch: number;
  lr: number;
  weightDecay: number;
  cropMin: number;
  dropLast: boolean;
  interpolation: 'bicubic' | 'bilinear';
  pixelCrops: boolean;
  seed: number;
  /** finetune: fine-tune from this layer of the projection head (0: the encoder alone; SimCLRv2: 1). */
  fromHeadLayer?: number;
  /** distill: softmax temperature of teacher and student (default 1). */
  temperature?: number;
  /** supervised, distill: the fresh network's init_zero (default: as the run's encoder). */
  zeroInitResidual?: boolean;
  /** distill: the student's width and depth (default the teacher's), and a subset of images (0: all). */
  studentWidth?: number;
  studentDepth?: number;
  maxImages?: number;
}

export interface ClassifierPlan {
  kind: ClassifierKind;
  /** The run folder (for distill: the one holding the fine-tuned teacher). */
  run: string;
  resume?: boolean;
  settings?: Partial<ClassifierSettings>;
  /** Default: as the run was made. */
  skipBadImages?: boolean;
  compute?: ComputePlan;
}

export type Outcome = 'finished' | 'stopped';

// ------------------------------------------------------------------ compute

/** Applies a plan's compute settings to this process and returns them as a run records them. */
function applyCompute(c: ComputePlan = {}): RecordedCompute {
  const settings = t.useCompute({ precision: c.precision ?? 'auto', channelsLast: c.channelsLast ?? 'auto', device: workerDevice(c.device) });
  if (c.threads !== undefined) t.setNumThreads(c.threads);
  return { precision: settings.precision, channelsLast: settings.channelsLast, threads: t.getNumThreads(), ...(settings.device !== 'cpu' ? { device: settings.device } : {}) };
}

const describeCompute = (c: RecordedCompute): string => `--precision ${c.precision} --channels-last ${c.channelsLast ? 'on' : 'off'} --threads ${c.threads}`;

/** Refuses to continue a stage under other compute settings than it was trained with, unless forced. */
function checkCompute(where: string, recorded: RecordedCompute | undefined, now: RecordedCompute, force = false): void {
  if (!recorded || force) return;
  const differs = recorded.precision !== now.precision || recorded.channelsLast !== now.channelsLast || recorded.threads !== now.threads;
  if (differs) {
    throw new PlanError(`${where} was trained with ${describeCompute(recorded)}; this process has ${describeCompute(now)}. ` + 'Resume with the recorded settings, or pass --force-settings to continue under these.');
  }
}

// ------------------------------------------------------------------ resuming with the same plan

/** A plan key as the command line spells it. */
const FLAG_NAMES: Readonly<Record<string, string>> = { spec: 'data', test: 'test-data' };
const kebab = (name: string): string => (Object.hasOwn(FLAG_NAMES, name) ? FLAG_NAMES[name]! : name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`));

/**
 * The given settings that differ from the recorded ones, as `--name (recorded X, given Y)`.
 * A setting the record does not hold was unset (its default), so giving it is a change too.
 */
function differences(recorded: Record<string, unknown> | undefined, given: Record<string, unknown>, ignore: ReadonlySet<string> = new Set()): string[] {
  if (!recorded) return [];
  const out: string[] = [];
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined || ignore.has(key)) continue;
    const was = Object.hasOwn(recorded, key) && recorded[key] !== null ? JSON.stringify(recorded[key]) : 'unset';
    if (was !== JSON.stringify(value)) out.push(`--${kebab(key)} (recorded ${was}, given ${JSON.stringify(value)})`);
  }
  return out;
}

function refuseDifferences(where: string, diffs: string[]): void {
  if (diffs.length) throw new PlanError(`${where}: --resume continues the run with its recorded settings, and these differ: ${diffs.join(', ')}`);
}

// ------------------------------------------------------------------ pretraining

/** What a pretraining run records of its plan, to check a resume against. */
interface RecordedPretrainPlan {
  data: DataPlan;
  encoder: EncoderPlan;
  settings: PretrainSettings;
}

/**
 * Pretrains on the workers given (the pipeline's), else on those the environment names
 * (--nproc, or a launcher's WORLD_SIZE/RANK/MASTER_ADDR/MASTER_PORT), else on this process.
 */
export async function runPretrain(plan: PretrainPlan, workers?: WorkersPlan): Promise<Outcome> {
  if (!plan.out) throw new PlanError('--out RUN (the run folder) is required');
  const compute = applyCompute(plan.compute);
  return withWorkers(workers, (group) => pretrainAs(plan, compute, group));
}

async function pretrainAs(plan: PretrainPlan, compute: RecordedCompute, workers: ProcessGroup | null): Promise<Outcome> {
  const lead = !workers || workers.rank === 0;
  let config: RunConfig & { plan?: RecordedPretrainPlan };
  let data: ImageDataset;
  let run: RunFolder;
  const resume = plan.resume ?? false;
  if (resume) {
    ({ run, config } = openRun(plan.out));
    const recorded = config.plan;
    refuseDifferences(plan.out, [
      ...differences(recorded?.data as Record<string, unknown> | undefined, { ...plan.data }),
      ...differences(recorded?.encoder as Record<string, unknown> | undefined, { ...plan.encoder }),
      ...differences(recorded?.settings as Record<string, unknown> | undefined, { ...plan.settings }, new Set(['knn'])),
    ]);
    // The last stretch's settings: the checkpoint's (a --force-settings resume changes them), else the run's.
    const lastCompute = (stageMeta(run, PRETRAIN_CHECKPOINT)?.config as { compute?: RecordedCompute } | undefined)?.compute ?? config.compute;
    checkCompute(plan.out, lastCompute, compute, plan.compute?.force);
    data = await trainData(config, plan.skipBadImages);
    checkPretrainBatch(config.pretrain, data.count, workers);
  } else {
    const userInputs = plan.data?.unlabeled?.length || plan.data?.labeled ? { unlabeled: plan.data.unlabeled ?? [], labeled: plan.data.labeled ?? null } : null;
    if (userInputs && plan.data?.spec) throw new PlanError('give --data SPEC, or --unlabeled DIR and --labeled DIR|FILE.csv, not both');
    if (!plan.data?.spec && !userInputs) throw new PlanError('--unlabeled DIR (your images) or --data SPEC (an image folder, fashion-mnist, cifar10-bin:DIR, ...) is required');
    // A folder with a config but no checkpoint never trained (it stopped at once): it may be planned anew.
    if (existsSync(`${plan.out}/config.json`) && hasCheckpoint(new RunFolder(plan.out), PRETRAIN_CHECKPOINT)) {
      throw new PlanError(`${plan.out} already holds a run; pass --resume to continue it or choose another --out`);
    }
    const d = plan.data as DataPlan;
    const shape = { imageSize: d.imageSize ?? 'auto', channels: d.channels ?? 'auto', skipBad: plan.skipBadImages } as const;
    const opened: OpenedDataset = userInputs ? await asPlanError(() => openInputs(userInputs, shape)) : await openDataset(d.spec, shape);
    data = opened;
    const s: PretrainSettings = { ...PRETRAIN_DEFAULTS, ...defined(plan.settings) };
    const encoder: EncoderPlan = { depth: 18, width: 1, sk: false, zeroInitResidual: false, ...defined(plan.encoder) };
    const warmup = s.warmupEpochs ?? (s.epochs >= 10 ? Math.round(s.epochs / 10) : 0);
    config = newRunConfig(
      userInputs ? opened.source : d.spec,
      d.test ?? null,
      opened,
      {
        encoder: encoderFor(encoder, data),
        epochs: s.epochs,
        batchSize: s.batch,
        lr: s.lr ?? defaultPretrainLr(data.size, s.lrScaling),
        lrScaling: s.lrScaling,
        seed: s.seed,
        temperature: s.temperature ?? (isSmallImage(data.size) ? 0.5 : 0.1),
        warmupEpochs: Math.min(warmup, s.epochs),
        maxImages: s.maxImages,
      },
      plan.skipBadImages ?? false,
      compute,
    );
    if (userInputs) config.inputs = userInputs;
    config.pretrain.views = { ...config.pretrain.views, crop: { scale: [s.cropMin, 1], ratio: [3 / 4, 4 / 3], pixelAligned: s.pixelCrops }, interpolation: s.interpolation };
    // Every setting as it took effect, so that a resume can be checked against all of them.
    config.plan = {
      data: { ...(userInputs ? { unlabeled: userInputs.unlabeled, labeled: userInputs.labeled ?? undefined } : { spec: d.spec }), test: d.test ?? null, imageSize: d.imageSize ?? 'auto', channels: d.channels ?? 'auto' } as DataPlan,
      encoder,
      settings: { ...s, lr: config.pretrain.lr, temperature: config.pretrain.temperature, warmupEpochs: config.pretrain.warmupEpochs },
    };
    checkPretrainBatch(config.pretrain, data.count, workers);
    // The kNN monitor needs a test set: found before anything is written.
    if (s.knn) await testData(config, undefined, plan.skipBadImages);
    run = new RunFolder(plan.out);
    if (lead) run.writeJson('config.json', config);
    if (lead) console.log(`${data.source}: ${data.size}x${data.size}, ${data.channels === 1 ? 'gray' : 'RGB'} (size: ${opened.auto.imageSize}; channels: ${opened.auto.channels})`);
  }
  if (lead) reportSkipped(data);
  const p = config.pretrain;
  const pool = p.maxImages ? Math.min(p.maxImages, data.count) : data.count;
  if (workers && p.batchSize % workers.worldSize !== 0 && lead) console.log(`note: the batch (${p.batchSize}) does not split evenly between ${workers.worldSize} workers; the first ones take one image more`);
  if (lead) console.log(`pretraining ResNet-${p.encoder.depth} (width ${p.encoder.width}${p.encoder.skRatio ? ', SK' : ''}) on ${pool} images of ${data.source}, ${p.epochs} epochs, batch ${p.batchSize}`);
  const knn = plan.settings?.knn ?? false;
  const knnSets = knn ? { train: data, test: await testData(config, undefined, plan.skipBadImages) } : undefined;
  const stop = holdStopSignal();
  try {
    const { model, finished } = await pretrain({ data, norm: config.norm, run, config: p, resume, stop, knn: knnSets, compute, workers, checkWeights: process.env.SIMCLR_CHECK_WEIGHTS === '1' });
    model.dispose();
    const stopped = stopAgreed(stop, workers);
    return finished && !stopped ? 'finished' : 'stopped';
  } finally {
    releaseStopSignal();
  }
}

/**
 * Pretraining's batch against its images and the workers, before anything is written: a
 * PlanError (exit 2), which a launcher's restart would only repeat, so it does not restart.
 */
function checkPretrainBatch(p: { batchSize: number; maxImages?: number }, count: number, workers: ProcessGroup | null): void {
  const pool = p.maxImages ? Math.min(p.maxImages, count) : count;
  if (workers && p.batchSize < workers.worldSize) {
    throw new PlanError(`pretraining's --batch ${p.batchSize} must hold at least one image per worker (${workers.worldSize} workers): give --batch ${workers.worldSize} or more, or fewer workers`);
  }
  if (pool < p.batchSize) {
    throw new PlanError(`pretraining's --batch ${p.batchSize} is more than the ${pool} images to pretrain on${p.maxImages && p.maxImages < count ? ' (--max-images)' : ''}: a step needs a whole batch (a short last batch is dropped)`);
  }
}

// ------------------------------------------------------------------ classifier stages

/** The options an object really sets (undefined ones left out, so defaults stay). */
function defined<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A network trained from scratch (the baseline, the student) may start its blocks its own way. */
function freshInit(encoder: ResNetOptions, zeroInitResidual: boolean | undefined): ResNetOptions {
  return zeroInitResidual === undefined ? encoder : { ...encoder, zeroInitResidual };
}

function trainConfig(s: ClassifierSettings): ClassifierTrainConfig {
  return {
    ...defaultClassifierConfig(),
    epochs: s.epochs,
    batchSize: s.batch,
    lr: s.lr,
    weightDecay: s.weightDecay,
    seed: s.seed,
    cropScale: [s.cropMin, 1],
    dropLast: s.dropLast,
    interpolation: s.interpolation,
    pixelAlignedCrops: s.pixelCrops,
    ...(s.temperature !== undefined ? { temperature: s.temperature } : {}),
  };
}

export function stageName(kind: ClassifierKind, labels: string): string {
  return `${kind}-${labelTag(labels)}`;
}

/** A stage's name from its label set: the user's labeled set or a list of ids by file name, else the fraction drawn. */
export function stageNameFor(kind: ClassifierKind, s: Pick<ClassifierSettings, 'labels' | 'labeled' | 'labelsFile'>): string {
  if (s.labeled) return `${kind}-${labelSetTag(s.labeled)}`;
  if (s.labelsFile) return `${kind}-${labelSetTag(s.labelsFile)}`;
  return stageName(kind, s.labels);
}

/** The fine-tuned teacher of a distillation: by its label set's name, else (runs made before stages were named by their list) by the fraction. */
function teacherStage(run: RunFolder, s: ClassifierSettings): string {
  const named = stageNameFor('finetune', s);
  return existsSync(run.path(`${named}.json`)) || !s.labelsFile ? named : stageName('finetune', s.labels);
}

/** A classifier stage on the workers given (the pipeline's), else on those the environment names, else on this process. */
export async function runClassifierStage(plan: ClassifierPlan, workers?: WorkersPlan): Promise<Outcome> {
  if (!plan.run) throw new PlanError(plan.kind === 'distill' ? '--teacher RUN is required' : '--from RUN is required');
  const depth = plan.settings?.studentDepth;
  if (depth !== undefined && ![18, 34, 50, 101, 152, 200].includes(depth)) throw new PlanError(`--student-depth must be 18, 34, 50, 101, 152 or 200, got ${depth}`);
  const labels = plan.settings?.labels ?? CLASSIFIER_DEFAULTS[plan.kind].labels;
  parseLabels(labels);
  if (plan.settings?.labeled && (plan.settings.labels !== undefined || plan.settings.labelsFile)) {
    throw new PlanError('--labeled uses every labeled image it names; --labels and --labels-file draw from a fully labeled --data instead: give one of them');
  }
  const compute = applyCompute(plan.compute);
  return withWorkers(workers, (group) => classifierStageAs(plan, labels, compute, group));
}

async function classifierStageAs(plan: ClassifierPlan, labels: string, compute: RecordedCompute, workers: ProcessGroup | null): Promise<Outcome> {
  const lead = isLead(workers);
  const { run, config } = openRun(plan.run);
  const name = stageNameFor(plan.kind, { labels, labeled: plan.settings?.labeled ?? config.inputs?.labeled ?? undefined, labelsFile: plan.settings?.labelsFile });
  const resume = plan.resume ?? false;
  // A resumed stage keeps its recorded settings; the plan may repeat them, not change them.
  let recordedSettings: Partial<ClassifierSettings> = {};
  if (resume && hasCheckpoint(run, name)) {
    const recorded = stageMeta(run, name)?.config as { settings?: ClassifierSettings; compute?: RecordedCompute } | undefined;
    refuseDifferences(`${plan.run}:${name}`, differences(recorded?.settings as Record<string, unknown> | undefined, { ...plan.settings }));
    checkCompute(`${plan.run}:${name}`, recorded?.compute, compute, plan.compute?.force);
    recordedSettings = recorded?.settings ?? {};
  }
  const s: ClassifierSettings = { ...CLASSIFIER_DEFAULTS[plan.kind], ...recordedSettings, ...defined(plan.settings) };
  const data = await openTrainImages(config, { skipBad: plan.skipBadImages, labeled: s.labeled, classes: s.classes });
  if (lead) reportSkipped(data);
  const c = trainConfig(s);
  const { val, subset, noValidation } = await stageLabels(run, data, s, plan.settings?.val, c.seed, name, workers);
  if (lead && isInputsDataset(data)) adoptClasses(run, config, data.classes);
  const numClasses = data.classes.length;
  const baseArch: ClassifierArch = { encoder: config.pretrain.encoder, headLayers: config.pretrain.headLayers, headDim: config.pretrain.headDim, fineTuneFrom: plan.kind === 'finetune' ? (s.fromHeadLayer ?? 1) : 1, numClasses };
  let arch = baseArch;
  let teacher: ReturnType<typeof loadClassifier> | undefined;
  let model;
  if (plan.kind === 'finetune') {
    model = classifierFor(arch, pretrainedModel(run, config));
  } else if (plan.kind === 'supervised') {
    arch = { ...baseArch, encoder: freshInit(baseArch.encoder, s.zeroInitResidual) };
    t.manualSeed(c.seed);
    model = classifierFor(arch);
  } else {
    const teacherName = teacherStage(run, { ...s, labeled: s.labeled ?? config.inputs?.labeled ?? undefined });
    const teacherArch = stageArch(run, teacherName);
    if (teacherArch.numClasses !== numClasses) {
      throw new PlanError(`the teacher ${plan.run}:${teacherName} has ${teacherArch.numClasses} classes, but ${data.source} has ${numClasses}`);
    }
    teacher = loadClassifier(run, teacherName);
    const student = { ...baseArch.encoder, ...(s.studentDepth ? { depth: s.studentDepth as 18 } : {}), ...(s.studentWidth ? { width: s.studentWidth } : {}) };
    arch = { ...baseArch, encoder: freshInit(student, s.zeroInitResidual) };
    t.manualSeed(c.seed);
    model = classifierFor(arch);
  }
  const indices = plan.kind === 'distill' ? sampleImages(data.count, s.maxImages ?? 0, c.seed) : subset;
  const batch = Math.min(c.batchSize, indices ? indices.length : data.count);
  if (workers && batch < workers.worldSize) {
    // A batch cut down to the stage's images names them, not a --batch the user did not give.
    const what = batch < c.batchSize ? `the batch (${batch}, cut from --batch ${c.batchSize} to the stage's ${batch} ${plan.kind === 'distill' ? 'image' : 'labeled image'}${batch > 1 ? 's' : ''})` : `--batch ${batch}`;
    throw new PlanError(`${name}: ${what} must hold at least one image per worker (${workers.worldSize} workers): use fewer workers${batch < c.batchSize ? '' : ` or --batch ${workers.worldSize} or more`}`);
  }
  if (lead) console.log(`${name}: ${indices ? indices.length : data.count} images (${subset.length} labeled), ${c.epochs} epochs, lr ${c.lr}${val.length ? `; ${val.length} held out for validation` : ''}${workers ? `; ${workers.worldSize} workers` : ''}`);
  if (lead && noValidation) console.log(`${name}: ${noValidation}`);
  const stop = holdStopSignal();
  const started = performance.now();
  const trained = model;
  // Validation after an epoch costs a forward pass over the split: it runs every epoch where
  // that is under a tenth of the epoch's training work (3 passes per image), else less often.
  // With workers, each evaluates its share of the split; rank 0 writes the figure.
  const perEpoch = indices ? indices.length : data.count;
  const every = Math.max(1, Math.ceil(val.length / (0.3 * perEpoch)));
  const validate = (epoch?: number, step?: number): number => {
    const top1 = evaluateClassifier(trained, data, config.norm, { indices: val, workers }).top1;
    if (epoch !== undefined && lead) run.metric({ stage: name, epoch, step, val_top1: top1 });
    return top1;
  };
  let valTop1: number | undefined;
  try {
    const afterEpoch = val.length ? (epoch: number, step: number) => void (epoch % every === 0 || epoch === c.epochs ? (valTop1 = validate(epoch, step)) : 0) : undefined;
    const checkWeights = process.env.SIMCLR_CHECK_WEIGHTS === '1';
    const finished = await trainClassifier({ stage: name, model, data, indices, norm: config.norm, run, config: c, teacher: teacher?.model, resume, stop, arch, settings: s, compute, afterEpoch, workers, checkWeights });
    if (!finished) return 'stopped';
    if (val.length && valTop1 === undefined) valTop1 = validate(); // resumed after the last epoch
    if (valTop1 !== undefined && lead) console.log(`${name}: validation top-1 ${valTop1.toFixed(2)}% (${val.length} images)`);
    const test = await testData(config, undefined, plan.skipBadImages).catch((e: unknown) => {
      if (e instanceof PlanError) return null; // no test split: the stage has no test result
      throw e;
    });
    if (!test && lead) console.log(`${name}: no test set (--test-data): ${valTop1 !== undefined ? 'the validation figure above is its only result' : 'no result figure, as it has no validation split either'}`);
    if (test) {
      const acc = evaluateClassifier(model, test, config.norm, { workers });
      if (lead) {
        recordResult(run, { stage: name, top1: acc.top1, top5: acc.top5, ...(valTop1 !== undefined ? { val_top1: valTop1, val_images: val.length } : {}), labeled: subset.length, epochs: c.epochs, lr: c.lr, precision: compute.precision, seconds: Math.round((performance.now() - started) / 1000) });
        console.log(`${name}: test top-1 ${acc.top1.toFixed(2)}%, top-5 ${acc.top5.toFixed(2)}%`);
      }
    }
    return stopAgreed(stop, workers) ? 'stopped' : 'finished';
  } finally {
    releaseStopSignal();
    model.dispose();
    teacher?.model.dispose();
  }
}

/**
 * The stage's validation split and labeled images. The user's labeled set is used whole
 * (less validation, which it holds out only with 5 or more labels a class unless --val
 * says); a fully labeled --data draws them by --labels. Rank 0 draws (or reads) them and
 * writes them to the run folder; the other workers read them there once it has.
 */
async function stageLabels(run: RunFolder, data: ImageDataset, s: ClassifierSettings, givenVal: string | undefined, seed: number, name: string, workers: ProcessGroup | null): Promise<{ val: number[]; subset: number[]; noValidation?: string }> {
  const lead = isLead(workers);
  if (isInputsDataset(data)) {
    if (data.labeledIndices.length === 0) throw new PlanError(`${name}: no labeled images: give --labeled DIR (class subfolders) or FILE.csv (path,label rows)`);
    const valFile = `val-${name.replace(/^[a-z]+-/, '')}.txt`;
    if (s.valFile || existsSync(run.path(valFile))) {
      const val = validationSubset(run, data, s.val, seed, s.valFile || run.path(valFile), { write: false });
      if (lead && s.valFile) writeSubsetFile(run.path(valFile), data, val);
      const held = new Set(val);
      return { val, subset: data.labeledIndices.filter((i) => !held.has(i)) };
    }
    const split = splitUserLabels(data, givenVal, s.val, seed);
    if (lead && split.val.length) writeSubsetFile(run.path(valFile), data, split.val);
    workers?.barrier();
    return { val: split.val, subset: split.train, ...(split.noValidation ? { noValidation: split.noValidation } : {}) };
  }
  const subsets = () => {
    const val = validationSubset(run, data, s.val, seed, s.valFile || undefined, { write: lead });
    return { val, subset: labeledSubset(run, data, s.labels, seed, s.labelsFile || undefined, val, { write: lead, file: s.labelsFile ? `labels-${labelSetTag(s.labelsFile)}.txt` : undefined }) };
  };
  let drawn = lead ? subsets() : null;
  workers?.barrier();
  drawn ??= subsets();
  return drawn;
}

/** A run made without labels takes its classes from its first labeled set; a later set must have the same. */
function adoptClasses(run: RunFolder, config: RunConfig, classes: string[]): void {
  if (config.classes.length === 0) {
    config.classes = classes;
    run.writeJson('config.json', config);
  }
}

function reportSkipped(ds: ImageDataset): void {
  if (ds.skipped.bad.length) console.log(skippedLine(ds.skipped.bad));
}

// ------------------------------------------------------------------ the pipeline

export interface PipelinePlan {
  out: string;
  resume?: boolean;
  data: DataPlan;
  encoder?: Partial<EncoderPlan>;
  /** Label fractions, each as ClassifierSettings.labels. */
  labels: string[];
  /** Every stage's seed, unless a stage's settings give their own. */
  seed?: number;
  /** The validation split of every classifier stage (ClassifierSettings.val, valFile). */
  val?: string;
  valFile?: string;
  skipBadImages?: boolean;
  compute?: ComputePlan;
  pretrain?: Partial<PretrainSettings>;
  supervised?: Partial<ClassifierSettings>;
  finetune?: Partial<ClassifierSettings>;
  distill?: Partial<ClassifierSettings>;
}

/** What a pipeline records (pipeline.json) so that running it again continues it with the same stage settings. */
type RecordedPipeline = Pick<PipelinePlan, 'seed' | 'val' | 'valFile' | 'pretrain' | 'supervised' | 'finetune' | 'distill'>;
const PIPELINE_FILE = 'pipeline.json';
const PIPELINE_STAGES = ['pretrain', 'supervised', 'finetune', 'distill'] as const;

/**
 * The plan's stage settings merged over the recorded ones; a given setting that differs from
 * the record is refused. Every worker reads the record before rank 0 writes a new one.
 */
function continuePipeline(run: RunFolder, plan: PipelinePlan, workers: ProcessGroup | null): RecordedPipeline {
  const given: RecordedPipeline = { ...defined({ seed: plan.seed, val: plan.val, valFile: plan.valFile }) };
  for (const stage of PIPELINE_STAGES) given[stage] = defined(plan[stage]) as never;
  const file = run.path(PIPELINE_FILE);
  const recorded = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as RecordedPipeline) : null;
  workers?.barrier();
  if (!recorded) {
    if (isLead(workers)) run.writeJson(PIPELINE_FILE, given);
    return given;
  }
  const diffs = differences(recorded as Record<string, unknown>, { seed: plan.seed, val: plan.val, valFile: plan.valFile });
  for (const stage of PIPELINE_STAGES) {
    diffs.push(...differences((recorded[stage] ?? {}) as Record<string, unknown>, { ...plan[stage] }, stage === 'pretrain' ? new Set(['knn']) : undefined).map((d) => d.replace('--', `--${stage}-`)));
  }
  refuseDifferences(plan.out, diffs);
  const merged: RecordedPipeline = { ...recorded, ...given };
  for (const stage of PIPELINE_STAGES) merged[stage] = { ...recorded[stage], ...given[stage] } as never;
  return merged;
}

/**
 * Pretraining, then for each label fraction the baseline, fine-tuning and distillation; a
 * stopped stage stops the pipeline. With workers (given, or named by the environment), every
 * stage runs on all of them in turn in the one group; rank 0 alone writes and reports.
 */
export async function runPipeline(plan: PipelinePlan, workers?: WorkersPlan): Promise<Outcome> {
  if (!plan.out) throw new PlanError('--out RUN is required');
  const userLabels = Boolean(plan.data.labeled);
  if (plan.labels.length === 0 && !userLabels) throw new PlanError('the pipeline needs at least one label fraction, or --labeled');
  for (const l of plan.labels) parseLabels(l);
  const lead = workers === undefined ? leadProcess() : isLead(workers);
  const done = await withWorkers(workers, (group) => pipelineAs(plan, group));
  // Rank 0 makes the report alone once the workers have left the group: the others do not
  // wait for it in a collective (on a large test set it may outlast SIMCLR_DIST_TIMEOUT).
  if (done.outcome === 'finished' && lead) await reportAtTheEnd(plan.out, done.seed, plan.skipBadImages);
  return done.outcome;
}

async function pipelineAs(plan: PipelinePlan, workers: ProcessGroup | null): Promise<{ outcome: Outcome; seed: number }> {
  const run = new RunFolder(plan.out);
  const settings = continuePipeline(run, plan, workers);
  const seed = settings.seed === undefined ? {} : { seed: settings.seed };
  const ended = (outcome: Outcome) => ({ outcome, seed: settings.seed ?? 0 });
  const stop = holdStopSignal();
  try {
    const started = await runPretrain(
      {
        out: plan.out,
        resume: plan.resume || hasCheckpoint(run, PRETRAIN_CHECKPOINT),
        data: plan.data,
        encoder: plan.encoder,
        settings: { ...seed, ...settings.pretrain },
        skipBadImages: plan.skipBadImages,
        compute: plan.compute,
      },
      workers,
    );
    if (started === 'stopped') return ended('stopped');
    // The user's labeled set is one label set; a fully labeled --data gives one per fraction.
    for (const labels of plan.data.labeled ? [undefined] : plan.labels) {
      for (const kind of ['supervised', 'finetune', 'distill'] as const) {
        const labelSet = labels === undefined ? {} : { labels };
        if (stopAgreed(stop, workers)) return ended('stopped');
        // The previous stage's files are all written (rank 0 writes them) before any worker looks.
        workers?.barrier();
        const outcome = await runClassifierStage(
          {
            kind,
            run: plan.out,
            resume: existsSync(run.path(`${stageNameFor(kind, { labels: labels ?? '', labeled: plan.data.labeled })}.json`)),
            settings: { ...seed, ...defined({ val: settings.val, valFile: settings.valFile }), ...settings[kind], ...labelSet },
            skipBadImages: plan.skipBadImages,
            compute: plan.compute,
          },
          workers,
        );
        if (outcome === 'stopped') return ended(outcome);
      }
    }
    return ended('finished');
  } finally {
    releaseStopSignal();
  }
}

/** The full report once every stage is trained: the classifier on the test set, views, the embedding map. */
async function reportAtTheEnd(out: string, seed: number, skipBadImages?: boolean): Promise<void> {
  try {
    const r = await buildReport({ run: out, seed, skipBadImages });
    const s = r.analysis.seconds;
    console.log(`report: ${r.analysis.stage} on ${r.analysis.testImages} test images, views, embedding map (${(s.classifier + s.views + s.map).toFixed(1)} s)`);
  } catch (e) {
    // A run without a labeled test set still has its results and curves in the report.
    if (!(e instanceof PlanError)) throw e;
    console.log(`report: results and curves only (${e.message})`);
  }
}
