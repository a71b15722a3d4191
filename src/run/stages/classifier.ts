// The classifier stages as plans: the baseline, fine-tuning and distillation, on a label set
// drawn from a fully labeled --data or given by the user (--labeled).
import { existsSync } from 'node:fs';
import * as t from '../../torch';
import { readSubsetFile, writeSubsetFile, type ImageDataset } from '../../data';
import { isInputsDataset, labelSetTag, openTrainImages, splitUserLabels } from '../data';
import { RunFolder, defaultClassifierConfig, holdStopSignal, releaseStopSignal, evaluateClassifier, hasCheckpoint, sampleImages, trainClassifier, type ClassifierTrainConfig } from '../../train';
import { CLASSIFIER_DEFAULTS } from '../defaults';
import { PlanError } from '../errors';
import { classifierFor, labelTag, labeledSubset, validationSubset, loadClassifier, openRun, parseLabels, pretrainedModel, stageArch, testData, type ClassifierArch, type RecordedCompute, type RunConfig } from '../folder';
import { recordResult, stageMeta } from '../results';
import type { ProcessGroup } from '../../distributed';
import { isLead, stopAgreed, withWorkers, type WorkersPlan } from '../workers';
import type { ResNetOptions } from '../../models';
import type { ClassifierKind, ClassifierPlan, ClassifierSettings, Outcome } from './types';
import { applyCompute, checkCompute } from './compute';
import { defined, differences, refuseDifferences, withLaterDefaults } from './resume';
import { reportSkipped } from './pretrain';

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
    batchNorm: s.batchNorm,
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
export function teacherStage(run: RunFolder, s: Pick<ClassifierSettings, 'labels' | 'labeled' | 'labelsFile'>): string {
  const named = stageNameFor('finetune', s);
  return existsSync(run.path(`${named}.json`)) || !s.labelsFile ? named : stageName('finetune', s.labels);
}

/** A classifier stage on the workers given (the pipeline's), else on those the environment names, else on this process. */
export async function runClassifierStage(plan: ClassifierPlan, workers?: WorkersPlan): Promise<Outcome> {
  const labels = checkClassifierPlan(plan);
  const compute = applyCompute(plan.compute);
  return withWorkers(workers, (group) => classifierStageAs(plan, labels, compute, group));
}

/** The plan's own mistakes, found before the run is opened (and by --dry-run); returns the label fraction. */
export function checkClassifierPlan(plan: ClassifierPlan): string {
  if (!plan.run) throw new PlanError(plan.kind === 'distill' ? '--teacher RUN is required' : '--from RUN is required');
  const depth = plan.settings?.studentDepth;
  if (depth !== undefined && ![18, 34, 50, 101, 152, 200].includes(depth)) throw new PlanError(`--student-depth must be 18, 34, 50, 101, 152 or 200, got ${depth}`);
  const labels = plan.settings?.labels ?? CLASSIFIER_DEFAULTS[plan.kind].labels;
  parseLabels(labels);
  if (plan.settings?.labeled && (plan.settings.labels !== undefined || plan.settings.labelsFile)) {
    throw new PlanError('--labeled uses every labeled image it names; --labels and --labels-file draw from a fully labeled --data instead: give one of them');
  }
  return labels;
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
    refuseDifferences(`${plan.run}:${name}`, differences(withLaterDefaults(recorded?.settings, CLASSIFIER_DEFAULTS[plan.kind]), { ...plan.settings }));
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
    // A split from an earlier version of the label set (a later round under the same name) is drawn again.
    const labeled = new Set(data.labeledIndices);
    const recorded = !s.valFile && existsSync(run.path(valFile)) ? readSubsetIfAll(run.path(valFile), data, labeled) : null;
    if (s.valFile || recorded) {
      const val = recorded ?? validationSubset(run, data, s.val, seed, s.valFile, { write: false });
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

/** A validation file's images, when every one of them is labeled; else null. */
function readSubsetIfAll(file: string, data: ImageDataset, labeled: ReadonlySet<number>): number[] | null {
  try {
    const ids = readSubsetFile(file, data);
    return ids.every((i) => labeled.has(i)) ? ids : null;
  } catch {
    return null;
  }
}

/** A run made without labels takes its classes from its first labeled set; a later set must have the same. */
function adoptClasses(run: RunFolder, config: RunConfig, classes: string[]): void {
  if (config.classes.length === 0) {
    config.classes = classes;
    run.writeJson('config.json', config);
  }
}

