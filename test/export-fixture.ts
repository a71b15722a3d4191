// Run folders for the export tests, made in seconds: a classifier with random weights and
// random batch-norm statistics (so that folding them is tested), saved as a stage checkpoint
// beside a config.json, as the training commands would leave them.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as t from '../src';
import { Classifier, SimCLRModel, type ResNetOptions } from '../src/models';
import { BatchNorm1d, BatchNorm2d } from '../src/nn';
import { RunFolder, saveCheckpoint, defaultPretrainConfig } from '../src/train';
import type { ClassifierArch, RunConfig } from '../src/run/folder';
import { DATASETS } from './helpers';

export interface FixtureOptions {
  encoder: ResNetOptions;
  imageSize: number;
  classes: string[];
  fineTuneFrom?: number;
  seed?: number;
  /** Where the run's test images are (an image folder), for config.testData. */
  testData?: string;
  stage?: string;
}

/** A classifier with random weights and batch norms whose statistics are far from (0, 1). */
export function randomClassifier(o: { encoder: ResNetOptions; classes: number; fineTuneFrom?: number; seed?: number }): Classifier {
  t.manualSeed(o.seed ?? 0);
  const base = new SimCLRModel({ encoder: o.encoder, head: { layers: 3, outDim: 32 } });
  const model = new Classifier(base, o.classes, { fineTuneFrom: o.fineTuneFrom ?? 1, zeroInit: false });
  t.noGrad(() => {
    for (const [, m] of model.namedModules()) {
      if (m instanceof BatchNorm2d || m instanceof BatchNorm1d) {
        const n = m.numFeatures;
        m.runningMean.copy_(t.tidy(() => t.randn([n]).mul(0.2)));
        m.runningVar.copy_(t.tidy(() => t.rand([n]).mul(1.5).add(0.5)));
        if (m.weight) m.weight.copy_(t.tidy(() => t.rand([n]).mul(0.8).add(0.6)));
        if (m.bias) m.bias.copy_(t.tidy(() => t.randn([n]).mul(0.1)));
      }
    }
    const fc = model.classifier.linear;
    fc.weight.copy_(t.tidy(() => t.randn(fc.weight.shape).mul(0.3)));
  });
  model.eval();
  return model;
}

/** Writes a run folder holding one trained-looking classifier stage; returns the model too. */
export function makeRun(dir: string, o: FixtureOptions): { run: string; model: Classifier; config: RunConfig; stage: string } {
  const stage = o.stage ?? 'distill-10pct';
  const run = new RunFolder(dir);
  const channels = (o.encoder.inChannels ?? 3) as 1 | 3;
  const model = randomClassifier({ encoder: o.encoder, classes: o.classes.length, fineTuneFrom: o.fineTuneFrom, seed: o.seed });
  const config: RunConfig = {
    data: o.testData ?? 'unused',
    testData: o.testData ?? null,
    imageSize: o.imageSize,
    channels,
    classes: o.classes,
    norm: { mean: [0.49, 0.48, 0.45].slice(0, channels), std: [0.25, 0.24, 0.26].slice(0, channels) },
    pretrain: defaultPretrainConfig(o.imageSize, channels, { encoder: o.encoder }),
  };
  run.writeJson('config.json', config);
  const arch: ClassifierArch = { encoder: o.encoder, headLayers: 3, headDim: 32, fineTuneFrom: o.fineTuneFrom ?? 1, numClasses: o.classes.length };
  saveCheckpoint(run, stage, model, null, { epoch: 1, step: 1, stage, config: { arch } });
  return { run: dir, model, config, stage };
}

/** A labeled image folder of CIFAR-10 test images: `perClass` of each of `classes`. */
export function cifarFolder(dir: string, classes: string[], perClass: number): string {
  for (const c of classes) {
    mkdirSync(join(dir, c), { recursive: true });
    for (const f of readdirSync(join(DATASETS, 'cifar10', 'test', c)).slice(0, perClass)) copyFileSync(join(DATASETS, 'cifar10', 'test', c, f), join(dir, c, f));
  }
  return dir;
}
