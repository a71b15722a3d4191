// The training and evaluation commands: flags -> a typed plan (src/run) -> the call. A plan
// holds the options the user gave; the stage's defaults fill in the rest, and --resume
// checks the given ones against the run's record.
import { UsageError, camel, type Parsed } from './options';
import type { COMMANDS, distillOptions, finetuneOptions, pretrainOptions, supervisedOptions } from './specs';
import { channelsOption, skippedLine } from './images';
import { stopExitCode } from '../train/control';
import { resolve } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { csvPath, listImagesDeep } from '../data';
import { writeAtomic } from '../util/fs';
import { parseBudget } from '../run/budget';
import { budgetClassifier, budgetPretrain } from '../run/budget/stage';
import { PlanError, evaluateRun, leadProcess, predictImages, type Prediction, runClassifierStage, runPretrain, type ClassifierKind, type ClassifierPlan, type ClassifierSettings, type ComputePlan, type Outcome, type PretrainPlan, type PretrainSettings } from '../run';

type Values = Record<string, unknown>;
type Given = ReadonlySet<string>;

/** The given options among `names` (kebab-case), camelCased: what a plan holds. */
export function pick<T>(values: Values, given: Given, names: readonly string[], prefix = ''): Partial<T> {
  const out: Values = {};
  for (const name of names) if (given.has(prefix + name)) out[camel(name)] = values[camel(prefix + name)];
  return out as Partial<T>;
}

export const PRETRAIN_SETTINGS = ['epochs', 'batch', 'lr', 'lr-scaling', 'temperature', 'warmup-epochs', 'crop-min', 'max-images', 'interpolation', 'pixel-crops', 'seed', 'knn', 'batch-norm'] as const;
export const CLASSIFIER_SETTINGS = ['labeled', 'classes', 'labels', 'labels-file', 'val', 'val-file', 'epochs', 'batch', 'lr', 'weight-decay', 'crop-min', 'drop-last', 'interpolation', 'pixel-crops', 'seed', 'from-head-layer', 'temperature', 'zero-init-residual', 'student-width', 'student-depth', 'max-images', 'batch-norm'] as const;

/** --model resnet50 or --depth 50, --width, --sk, --zero-init-residual, as given. */
export function encoderPlan(values: Values, given: Given): PretrainPlan['encoder'] {
  const depthFromModel = given.has('model') ? Number(/^resnet(\d+)$/.exec(String(values.model))?.[1]) : undefined;
  return { ...(depthFromModel ? { depth: depthFromModel } : {}), ...pick(values, given, ['depth', 'width', 'sk', 'zero-init-residual']) };
}

export function computePlan(values: Values, given: Given): ComputePlan {
  return { ...pick<ComputePlan>(values, given, ['precision', 'channels-last', 'threads', 'device']), force: Boolean(values.forceSettings) };
}

export function dataPlan(values: Values, given: Given): PretrainPlan['data'] {
  if (!['unlabeled', 'labeled', 'data', 'test-data', 'image-size', 'channels'].some((n) => given.has(n))) return undefined;
  return {
    ...(given.has('data') ? { spec: String(values.data) } : {}),
    ...(given.has('unlabeled') ? { unlabeled: values.unlabeled as string[] } : {}),
    ...(given.has('labeled') ? { labeled: String(values.labeled) } : {}),
    ...(given.has('test-data') ? { test: String(values.testData) } : {}),
    ...(given.has('image-size') ? { imageSize: values.imageSize as number | 'auto' } : {}),
    ...(given.has('channels') ? { channels: channelsOption(values.channels as 'auto' | '1' | '3') } : {}),
  };
}

/** Exit status for a stage's outcome (130 after Ctrl-C, 143 after SIGTERM); a stopped stage says how to go on. */
export function exitFor(name: string, outcome: Outcome, howToContinue = 'the same command and --resume'): number {
  if (outcome === 'finished') return 0;
  if (leadProcess()) console.log(`${name} stopped; the last checkpoint is saved. Continue with ${howToContinue}.`);
  return stopExitCode();
}

type Parse<O> = { values: O; given: Given };

/** The pretraining plan a command line describes (the given options only). */
export function pretrainPlanOf(v: Values, given: Given): PretrainPlan {
  return {
    out: String(v.out ?? ''),
    resume: Boolean(v.resume),
    data: dataPlan(v, given),
    encoder: encoderPlan(v, given),
    settings: pick<PretrainSettings>(v, given, PRETRAIN_SETTINGS),
    ...(given.has('skip-bad-images') ? { skipBadImages: Boolean(v.skipBadImages) } : {}),
    ...(v.init ? { init: String(v.init) } : {}),
    compute: computePlan(v, given),
  };
}

export async function pretrainCommand({ values, given }: Parse<Parsed<typeof pretrainOptions>>): Promise<number> {
  const v = values as Values;
  const plan = pretrainPlanOf(v, given);
  const seconds = stageBudgetOf(v, given);
  return exitFor('pretraining', await runPretrain(seconds ? await budgetPretrain(plan, seconds) : plan));
}

/** --budget on a training command: its seconds, checked (one process; not with --epochs). */
export function stageBudgetOf(v: Values, given: Given): number | undefined {
  if (v.budget === undefined) return undefined;
  if (given.has('epochs')) throw new UsageError('give --budget or --epochs, not both: the budget sets the epochs');
  if (Number(v.nproc ?? 1) > 1 || Number(v.nnodes ?? 1) > 1 || (process.env.WORLD_SIZE && process.env.WORLD_SIZE !== '1')) throw new UsageError('--budget plans in one process; with workers give --epochs');
  try {
    return parseBudget(String(v.budget));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A classifier stage's plan as a command line describes it (the given options only). */
export function classifierPlanOf(kind: ClassifierKind, values: Values, given: Given): ClassifierPlan {
  return {
    kind,
    run: String((kind === 'distill' ? values.teacher : values.from) ?? ''),
    resume: Boolean(values.resume),
    settings: pick<ClassifierSettings>(values, given, CLASSIFIER_SETTINGS),
    ...(given.has('skip-bad-images') ? { skipBadImages: Boolean(values.skipBadImages) } : {}),
    compute: computePlan(values, given),
  };
}

function classifierCommand(kind: ClassifierKind) {
  return async ({ values, given }: Parse<Values>): Promise<number> => {
    const plan = classifierPlanOf(kind, values, given);
    const seconds = stageBudgetOf(values, given);
    return exitFor(kind, await runClassifierStage(seconds ? await budgetClassifier(plan, seconds) : plan));
  };
}

export const finetuneCommand: (p: Parse<Parsed<typeof finetuneOptions>>) => Promise<number> = classifierCommand('finetune');
export const supervisedCommand: (p: Parse<Parsed<typeof supervisedOptions>>) => Promise<number> = classifierCommand('supervised');
export const distillCommand: (p: Parse<Parsed<typeof distillOptions>>) => Promise<number> = classifierCommand('distill');

export async function evalCommand({ values: o }: { values: Parsed<typeof COMMANDS.eval.options> }): Promise<number> {
  const r = await evaluateRun({ run: o.model ?? '', stage: o.stage, testData: o.testData, knn: o.knn, linear: o.linear, linearEpochs: o.linearEpochs, skipBadImages: o.skipBadImages || undefined });
  // With workers, every one has the figures; rank 0 prints them.
  if (!leadProcess()) return 0;
  if (r.skipped.length) console.log(skippedLine(r.skipped));
  if (r.knnTop1 !== undefined) console.log(`pretrained encoder: kNN (k=200, T=0.1) top-1 ${r.knnTop1.toFixed(2)}% on ${r.testImages} images`);
  if (r.linear) console.log(`pretrained encoder: linear evaluation (frozen, all ${r.linear.trainLabels} training labels, ${r.linear.epochs} epochs) top-1 ${r.linear.top1.toFixed(2)}% on ${r.testImages} images`);
  for (const s of r.stages) console.log(`${s.stage}: top-1 ${s.top1.toFixed(2)}%, top-5 ${s.top5.toFixed(2)}% on ${r.testImages} images`);
  return 0;
}

export async function predictCommand({ values: o, positionals }: { values: Parsed<typeof COMMANDS.predict.options>; positionals: string[] }): Promise<number> {
  const files = [...positionals, ...folderImages(o.unlabeled)];
  const r = await predictImages({ run: o.model ?? '', files, stage: o.stage, skipBadImages: o.skipBadImages, top: o.top });
  if (r.skipped.length) console.error(skippedLine(r.skipped));
  if (o.out) {
    writePredictionsCsv(o.out, r.predictions);
    console.log(`wrote ${o.out}: ${r.predictions.length} images classified by ${r.model}`);
  } else if (o.json) console.log(JSON.stringify({ model: r.model, predictions: r.predictions }, null, 2));
  else for (const p of r.predictions) console.log(`${p.file}: ${p.top.map((c) => `${c.class} (${(c.probability * 100).toFixed(1)}%)`).join(', ')}`);
  return 0;
}

/** The image files under --unlabeled folders (at any depth). */
export function folderImages(dirs: string[] | undefined): string[] {
  try {
    return (dirs ?? []).flatMap((d) => listImagesDeep(d).files);
  } catch (e) {
    throw new PlanError((e as Error).message);
  }
}

function writePredictionsCsv(file: string, predictions: Prediction[]): void {
  const rows = predictions.map((p) => [csvPath(file, resolve(p.file)), p.class, p.probability.toFixed(4), p.top.map((c) => `${c.class}:${c.probability.toFixed(4)}`).join(' ')]);
  writeAtomic(file, stringify([['path', 'class', 'probability', 'top'], ...rows]));
}
