// A run folder as the stages see it: its config (data, model, compute settings,
// normalisation), the data sets opened from it, the label subsets, and the models of each
// stage rebuilt from their checkpoints.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Classifier, SimCLRModel, type ResNetDepth, type ResNetOptions } from '../models';
import { parseLabelSpec, type DataInputs, type OpenedDataset, readSubsetFile, stratifiedSubset, validationSplit, writeSubsetFile, type ImageDataset, type LabelSpec } from '../data';
import { RunFolder, datasetStats, loadCheckpoint, hasCheckpoint, defaultPretrainConfig, PRETRAIN_CHECKPOINT, type Normalisation, type PretrainConfig } from '../train';
import type { Precision } from '../torch';
import { PlanError } from './errors';
import { openTestImages, openTrainImages } from './data';
import { isSmallImage } from '../augment';

export interface RunConfig {
  /** A data set spec; for a run made from --unlabeled/--labeled, a description of them (see inputs). */
  data: string;
  /** The user's unlabeled folders and labeled set, when the run was made from them. */
  inputs?: DataInputs;
  /** Published weights the encoder started from (pretrain --init). */
  init?: { file: string; layout: string; head: string };
  testData: string | null;
  imageSize: number;
  channels: 1 | 3;
  /** Why imageSize and channels are what they are (auto choices from the images, or a flag). */
  chosen?: { imageSize: string; channels: string };
  /** Unreadable images were skipped (--skip-bad-images); later stages reading the data do the same. */
  skipBadImages?: boolean;
  classes: string[];
  norm: Normalisation;
  pretrain: PretrainConfig;
  /** How the run computes (recorded at its start; resuming under others is refused unless forced). */
  compute?: RecordedCompute;
}

/** Compute settings as a run records them. */
export interface RecordedCompute {
  precision: Precision;
  channelsLast: boolean;
  threads: number;
  /** where it trained, when not on the CPU ('cuda:0'); a stage may resume on another device */
  device?: string;
}

/** The architecture of a classifier stage, saved in its checkpoint so it can be rebuilt. */
export interface ClassifierArch {
  encoder: ResNetOptions;
  headLayers: number;
  headDim: number;
  fineTuneFrom: number;
  numClasses: number;
}

export function openRun(dir: string): { run: RunFolder; config: RunConfig } {
  const file = join(dir, 'config.json');
  if (!existsSync(file)) throw new PlanError(`${dir}: not a simclr run folder (no config.json); make one with simclr pretrain --out ${dir}`);
  return { run: new RunFolder(dir), config: JSON.parse(readFileSync(file, 'utf8')) as RunConfig };
}

/** The run's training images, read as the run was made (size, channels, skipped images). */
export async function trainData(config: RunConfig, skipBad?: boolean, labeled?: string): Promise<ImageDataset> {
  return openTrainImages(config, { skipBad, labeled });
}

/** The test set: --test-data, or the source's own test split where it has one. */
export async function testData(config: RunConfig, override?: string, skipBad?: boolean): Promise<ImageDataset> {
  return openTestImages(config, override, skipBad);
}

/** The encoder a plan asks for, fitted to the data: CIFAR stem for small images, the data's channels. */
export function encoderFor(o: { depth: number; width: number; sk: boolean; zeroInitResidual?: boolean }, ds: ImageDataset): ResNetOptions {
  if (![18, 34, 50, 101, 152, 200].includes(o.depth)) throw new PlanError(`--depth must be 18, 34, 50, 101, 152 or 200, got ${o.depth}`);
  // skStride1Pool: new SK runs pool their stride-1 shortcut as the official code does (runs made before keep theirs).
  return { depth: o.depth as ResNetDepth, width: o.width, skRatio: o.sk ? 0.0625 : 0, cifarStem: isSmallImage(ds.size), inChannels: ds.channels, zeroInitResidual: o.zeroInitResidual ?? false, ...(o.sk ? { skStride1Pool: true } : {}) };
}

export function newRunConfig(spec: string, test: string | null, ds: OpenedDataset, pretrain: Partial<PretrainConfig>, skipBadImages: boolean, compute: RecordedCompute): RunConfig {
  return {
    data: spec,
    testData: test,
    imageSize: ds.size,
    channels: ds.channels,
    chosen: ds.auto,
    skipBadImages,
    classes: ds.classes,
    norm: datasetStats(ds),
    pretrain: defaultPretrainConfig(ds.size, ds.channels, pretrain),
    compute,
  };
}

/** '1%' -> '1pct', '25/class' -> '25-per-class': names for files of a label fraction. */
export function labelTag(spec: string): string {
  return spec.trim().replace('%', 'pct').replace('/class', '-per-class').replace(/[^A-Za-z0-9.-]/g, '_');
}

export function parseLabels(text: string): LabelSpec {
  try {
    return parseLabelSpec(text);
  } catch (e) {
    throw new PlanError((e as Error).message);
  }
}

/** write: false reads or draws a subset without writing it to the run folder (a worker other than rank 0). */
export interface SubsetWrite {
  write?: boolean;
  /** the subset's file in the run folder (default labels-<fraction>.txt) */
  file?: string;
}

/** The labeled subset for a label spec: reused from the run folder if it is there, else drawn and written. */
export function labeledSubset(run: RunFolder, ds: ImageDataset, labels: string, seed: number, labelsFile?: string, validation: readonly number[] = [], { write = true, file: name }: SubsetWrite = {}): number[] {
  if (!ds.labels) throw new PlanError(`${ds.source} has no labels (no class subfolders): give your labeled images with --labeled DIR|FILE.csv`);
  const file = run.path(name ?? `labels-${labelTag(labels)}.txt`);
  const held = new Set(validation);
  let subset: number[];
  if (labelsFile || existsSync(file)) {
    subset = readSubsets(labelsFile ?? file, ds);
    const overlap = subset.filter((i) => held.has(i));
    if (overlap.length) {
      throw new PlanError(`${labelsFile ?? file}: ${overlap.length} labeled images (${ds.ids[overlap[0]!]}${overlap.length > 1 ? ', ...' : ''}) are in the validation split ${run.path(VAL_FILE)}; choose labels outside it, or --val 0`);
    }
  } else subset = stratifiedSubset(ds.labels, parseLabels(labels), seed, held);
  if (write && (labelsFile || !existsSync(file))) writeSubsetFile(file, ds, subset);
  return subset;
}

/** The run's validation split (val.txt), made once by the first stage that asks, from --val or --val-file. */
export const VAL_FILE = 'val.txt';

export function validationSubset(run: RunFolder, ds: ImageDataset, spec: string, seed: number, valFile?: string, { write = true }: SubsetWrite = {}): number[] {
  if (!ds.labels) return [];
  const file = run.path(VAL_FILE);
  if (valFile) {
    const subset = readSubsets(valFile, ds, '--val-file');
    if (write) writeSubsetFile(file, ds, subset);
    return subset;
  }
  if (existsSync(file)) return readSubsets(file, ds, '--val-file');
  let subset: number[];
  try {
    subset = validationSplit(ds.labels, spec, seed);
  } catch (e) {
    throw new PlanError((e as Error).message);
  }
  if (write && subset.length) writeSubsetFile(file, ds, subset);
  return subset;
}

function readSubsets(file: string, ds: ImageDataset, flag = '--labels-file'): number[] {
  try {
    return readSubsetFile(file, ds);
  } catch (e) {
    throw new PlanError((e as Error).message.replace('--labels-file', flag));
  }
}

/** A run whose pretraining has not saved a checkpoint yet has no encoder to use. */
export function checkPretrained(run: RunFolder): void {
  if (!hasCheckpoint(run, 'pretrain')) throw new PlanError(`${run.dir}: no pretraining checkpoint yet; run simclr pretrain --out ${run.dir} first`);
}

export function pretrainedModel(run: RunFolder, config: RunConfig): SimCLRModel {
  checkPretrained(run);
  const model = new SimCLRModel({ encoder: config.pretrain.encoder, head: { layers: config.pretrain.headLayers, outDim: config.pretrain.headDim } });
  loadCheckpoint(run, 'pretrain', model, null);
  return model;
}

export function classifierFor(arch: ClassifierArch, from?: SimCLRModel): Classifier {
  const base = from ?? new SimCLRModel({ encoder: arch.encoder, head: { layers: arch.headLayers, outDim: arch.headDim } });
  return new Classifier(base, arch.numClasses, { fineTuneFrom: arch.fineTuneFrom });
}

/** The architecture a classifier stage's checkpoint was saved with. */
export function stageArch(run: RunFolder, stage: string): ClassifierArch {
  const metaFile = run.path(`${stage}.json`);
  if (!existsSync(metaFile)) throw new PlanError(`${run.dir}: no '${stage}' checkpoint (stages there: ${listStages(run).join(', ') || 'none'})`);
  return (JSON.parse(readFileSync(metaFile, 'utf8')) as { config: { arch: ClassifierArch } }).config.arch;
}

/** Rebuilds a trained classifier stage (finetune-*, distill-*, supervised-*) from its checkpoint. */
export function loadClassifier(run: RunFolder, stage: string): { model: Classifier; arch: ClassifierArch } {
  const arch = stageArch(run, stage);
  const model = classifierFor(arch);
  loadCheckpoint(run, stage, model, null);
  return { model, arch };
}

export function listStages(run: RunFolder): string[] {
  return readdirSync(run.dir)
    .filter((f) => f.endsWith('.json') && /^(finetune|distill|supervised)-/.test(f))
    .map((f) => f.slice(0, -5));
}

/** The classifier `predict`, `export`, `serve` and the report use by default: distill-*, else finetune-*, else any. */
export function defaultClassifierStage(run: RunFolder): string | undefined {
  const stages = listStages(run);
  return stages.find((s) => s.startsWith('distill-')) || stages.find((s) => s.startsWith('finetune-')) || stages[0];
}

/** The classifier `predict` and `export` use by default: distill-*, else finetune-*, else any. */
export function defaultStage(run: RunFolder, dir: string): string {
  const stage = defaultClassifierStage(run);
  if (!stage) throw new PlanError(`${dir}: no trained classifier yet (no finetune-*, distill-* or supervised-* stage; run simclr finetune --from ${dir} first)`);
  return stage;
}

/** The classifier stage a command uses: the one given (its checkpoint there), else the default. */
export function classifierStage(run: RunFolder, dir: string, given?: string): string {
  if (!given) return defaultStage(run, dir);
  stageArch(run, given);
  return given;
}

/** Whether a folder holds a pretrained run already: its config and the pretraining checkpoint. */
export function holdsRun(dir: string): boolean {
  return existsSync(join(dir, 'config.json')) && hasCheckpoint(new RunFolder(dir), PRETRAIN_CHECKPOINT);
}
