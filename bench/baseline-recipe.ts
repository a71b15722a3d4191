// The parity recipe's supervised baseline on 1% of Fashion-MNIST (600 images, ResNet-18
// width 0.25 with the CIFAR stem, 120 epochs of SGD Nesterov lr 0.1 cosine, wd 5e-4,
// batch 256 drop last, crop 0.5-1 + flip), trained seed by seed by the benches that
// compare means over seeds (bench/precision-seeds.ts, bench/baseline-peer.ts).
import * as t from '../src';
import { openDataset, parseLabelSpec, stratifiedSubset, type ImageDataset } from '../src/data';
import { RunFolder, datasetStats, defaultClassifierConfig, evaluateClassifier, trainClassifier, type ClassifierTrainConfig, type Normalisation } from '../src/train';

export interface BaselineData {
  train: ImageDataset;
  test: ImageDataset;
  norm: Normalisation;
}

export async function fashionMnist(): Promise<BaselineData> {
  const train = await openDataset('fashion-mnist', { split: 'train' });
  const test = await openDataset('fashion-mnist', { split: 'test' });
  return { train, test, norm: datasetStats(train) };
}

export const baselineConfig = (overrides: Partial<ClassifierTrainConfig> = {}): ClassifierTrainConfig =>
  defaultClassifierConfig({ epochs: 120, lr: 0.1, weightDecay: 5e-4, cropScale: [0.5, 1], dropLast: true, ...overrides });

/** The stratified 1% subset drawn by `seed`. */
export const baselineSubset = (d: BaselineData, seed: number): number[] => stratifiedSubset(d.train.labels!, parseLabelSpec('1%'), seed);

/** Trains a fresh model on `subset` (initialised from `seed`), checkpointing under dir; returns its test top-1. */
export function trainBaseline(d: BaselineData, subset: number[], seed: number, config: ClassifierTrainConfig, dir: string): number {
  t.manualSeed(seed);
  const model = new t.Classifier(new t.SimCLRModel({ encoder: { depth: 18, width: 0.25, cifarStem: true, inChannels: 1 } }), 10);
  try {
    trainClassifier({ stage: 'supervised-1pct', model, data: d.train, indices: subset, norm: d.norm, run: new RunFolder(dir), config: { ...config, seed } });
    return evaluateClassifier(model, d.test, d.norm).top1;
  } finally {
    model.dispose();
  }
}

export const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
/** Sample standard deviation. */
export const sd = (v: number[]): number => Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / Math.max(1, v.length - 1));
