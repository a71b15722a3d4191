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
export async function trainBaseline(d: BaselineData, subset: number[], seed: number, config: ClassifierTrainConfig, dir: string): Promise<number> {
  t.manualSeed(seed);
  const model = new t.Classifier(new t.SimCLRModel({ encoder: { depth: 18, width: 0.25, cifarStem: true, inChannels: 1 } }), 10);
  try {
    await trainClassifier({ stage: 'supervised-1pct', model, data: d.train, indices: subset, norm: d.norm, run: new RunFolder(dir), config: { ...config, seed } });
    return evaluateClassifier(model, d.test, d.norm).top1;
  } finally {
    model.dispose();
  }
}

export const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
/** Sample standard deviation. */
export const sd = (v: number[]): number => Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / Math.max(1, v.length - 1));

/**
 * Mean of the per-seed differences a[i] - b[i] and its standard error (sd of the
 * differences / sqrt(n)): the two sides share each seed's subset, so pairing removes
 * the subset's share of the spread.
 */
export function pairedDifference(a: number[], b: number[]): { mean: number; se: number; n: number } {
  if (a.length !== b.length || a.length === 0) throw new Error(`pairedDifference: need two equal, non-empty lists (got ${a.length} and ${b.length})`);
  const d = a.map((x, i) => x - b[i]!);
  return { mean: mean(d), se: d.length > 1 ? sd(d) / Math.sqrt(d.length) : NaN, n: d.length };
}

/** Seeds from "0-7" (a range, both ends in), "0,2,5" (a list) or "4" (that many from `first`). */
export function parseSeeds(spec: string, first = 0): number[] {
  const s = spec.trim();
  const range = /^(\d+)\s*-\s*(\d+)$/.exec(s);
  if (range) {
    const [lo, hi] = [Number(range[1]), Number(range[2])];
    if (hi < lo) throw new Error(`seed range ${s}: the end is before the start`);
    return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  }
  if (/^\d+(\s*,\s*\d+)+$/.test(s)) return s.split(',').map((x) => Number(x.trim()));
  if (/^\d+$/.test(s) && Number(s) > 0) return Array.from({ length: Number(s) }, (_, i) => first + i);
  throw new Error(`seeds: expected a range (0-7), a list (0,2,5) or a count (4), got "${spec}"`);
}
