// What the training commands share: the run folder's config, data sets opened from it,
// and the models of each stage rebuilt from their checkpoints.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Classifier, SimCLRModel, type ResNetDepth, type ResNetOptions } from '../models';
import { openDataset, parseLabelSpec, readSubsetFile, stratifiedSubset, writeSubsetFile, type ImageDataset, type LabelSpec } from '../data';
import { RunFolder, datasetStats, loadCheckpoint, hasCheckpoint, defaultPretrainConfig, type Normalisation, type PretrainConfig } from '../train';
import type { Flags } from './args';
import { UsageError } from './args';

export interface RunConfig {
  data: string;
  testData: string | null;
  imageSize: number;
  channels: 1 | 3;
  classes: string[];
  norm: Normalisation;
  pretrain: PretrainConfig;
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
  if (!existsSync(file)) throw new UsageError(`${dir}: not a simclr run folder (no config.json); make one with simclr pretrain --out ${dir}`);
  return { run: new RunFolder(dir), config: JSON.parse(readFileSync(file, 'utf8')) as RunConfig };
}

export async function trainData(config: RunConfig): Promise<ImageDataset> {
  return openDataset(config.data, { imageSize: config.imageSize, channels: config.channels, split: 'train' });
}

/** The test set: --test-data, or the source's own test split where it has one. */
export async function testData(config: RunConfig, override?: string): Promise<ImageDataset> {
  const spec = override || config.testData;
  if (spec) return openDataset(spec, { imageSize: config.imageSize, channels: config.channels, split: 'test' });
  if (/^(fashion-mnist|mnist|cifar10-bin|cifar100-bin)(:|$)/.test(config.data)) {
    return openDataset(config.data, { imageSize: config.imageSize, channels: config.channels, split: 'test' });
  }
  throw new UsageError(`${config.data} has no test split: pass --test-data`);
}

/** Model flags shared by pretrain and supervised: --depth/--model, --width, --sk. */
export function encoderFromFlags(flags: Flags, ds: ImageDataset): ResNetOptions {
  const model = flags.string('model', '');
  const depthFromModel = model ? Number(/^resnet(\d+)$/.exec(model)?.[1]) : NaN;
  if (model && !depthFromModel) throw new UsageError(`--model must be resnet18, resnet34, resnet50, resnet101, resnet152 or resnet200, got '${model}'`);
  const depth = flags.number('depth', depthFromModel || 18, { integer: true }) as ResNetDepth;
  if (![18, 34, 50, 101, 152, 200].includes(depth)) throw new UsageError(`--depth must be 18, 34, 50, 101, 152 or 200, got ${depth}`);
  const width = flags.number('width', 1, { min: 0.0625, max: 8 });
  if (!(width > 0)) throw new UsageError(`--width must be positive, got ${width}`);
  const sk = flags.boolean('sk');
  return { depth, width, skRatio: sk ? 0.0625 : 0, cifarStem: ds.size <= 32, inChannels: ds.channels };
}

export function newRunConfig(spec: string, test: string | null, ds: ImageDataset, pretrain: Partial<PretrainConfig>): RunConfig {
  return {
    data: spec,
    testData: test,
    imageSize: ds.size,
    channels: ds.channels,
    classes: ds.classes,
    norm: datasetStats(ds),
    pretrain: defaultPretrainConfig(ds.size, ds.channels, pretrain),
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
    throw new UsageError((e as Error).message);
  }
}

/** The labeled subset for a label spec: reused from the run folder if it is there, else drawn and written. */
export function labeledSubset(run: RunFolder, ds: ImageDataset, labels: string, seed: number, labelsFile?: string): number[] {
  if (!ds.labels) throw new UsageError(`${ds.source} has no labels (no class subfolders): fine-tuning needs some`);
  const file = run.path(`labels-${labelTag(labels)}.txt`);
  if (labelsFile) {
    const subset = readSubsetFile(labelsFile, ds);
    writeSubsetFile(file, ds, subset);
    return subset;
  }
  if (existsSync(file)) return readSubsetFile(file, ds);
  const subset = stratifiedSubset(ds.labels, parseLabels(labels), seed);
  writeSubsetFile(file, ds, subset);
  return subset;
}

export function pretrainedModel(run: RunFolder, config: RunConfig): SimCLRModel {
  const model = new SimCLRModel({ encoder: config.pretrain.encoder, head: { layers: config.pretrain.headLayers, outDim: config.pretrain.headDim } });
  if (!hasCheckpoint(run, 'pretrain')) throw new UsageError(`${run.dir}: no pretraining checkpoint yet; run simclr pretrain --out ${run.dir} first`);
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
  if (!existsSync(metaFile)) throw new UsageError(`${run.dir}: no '${stage}' checkpoint (stages there: ${listStages(run).join(', ') || 'none'})`);
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
