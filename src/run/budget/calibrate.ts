// What a step costs on this machine, measured before planning a time budget: a few real
// training steps of each kind (the functions the stages run, src/train/steps.ts) on
// synthetic images of the run's size, model and batch, and an evaluation pass.
import * as t from '../../torch';
import { Classifier, SimCLRModel, type ResNetOptions } from '../../models';
import { holdForInference, inference, prepareModel } from '../../nn';
import { LARS, SGD } from '../../optim';
import { evalInput, fineTuneViewOptions, simclrViewOptions, type Normalisation } from '../../augment';
import { RunFolder, classifierStep, distillStep, pretrainStep, saveCheckpoint } from '../../train';
import type { Module } from '../../nn';
import type { Stateful } from '../../train/checkpoint';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Seconds per image of each kind of work. */
export interface StepCosts {
  /** a pretraining step: two views, forward, backward, LARS */
  pretrain: number;
  /** a fine-tuning or baseline step: one view, forward, backward, SGD */
  train: number;
  /** an evaluation forward pass (no gradients) */
  evaluate: number;
  /** a distillation step: the teacher's forward pass and the student's step, on one view */
  distill?: number;
  /** the end of an epoch: its checkpoint written (model and optimiser, flushed to disk) */
  epoch?: number;
  /** the calibration's own time, in seconds */
  seconds: number;
}

export interface CalibrationModel {
  encoder: ResNetOptions;
  headLayers: number;
  headDim: number;
  size: number;
  channels: 1 | 3;
  pretrainBatch: number;
  classifierBatch: number;
  numClasses: number;
}

const NORM: Normalisation = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };

/** Seconds per call of f, over `times` calls after two to warm up (kernels and buffers made on first use). */
function timed(f: () => void, times: number): number {
  f();
  f();
  const started = performance.now();
  for (let i = 0; i < times; i++) f();
  return (performance.now() - started) / 1000 / times;
}

/** Seconds to write an epoch's checkpoint (model and optimiser state, flushed), in a folder removed after. */
function timedCheckpoint(model: Module, optimizer: Stateful): number {
  const dir = mkdtempSync(join(tmpdir(), 'simclr-calibrate-'));
  try {
    const run = new RunFolder(dir);
    return timed(() => saveCheckpoint(run, 'calibration', model, optimizer, { stage: 'calibration', epoch: 0, step: 0, config: {} }), 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A distillation step's seconds: a fresh student of the same model learning from `teacher` (in eval mode). */
function timedDistill(m: CalibrationModel, teacher: Classifier, batch: t.Tensor, norm: Normalisation, steps: number): number {
  const student = prepareModel(new Classifier(new SimCLRModel({ encoder: m.encoder, head: { layers: m.headLayers, outDim: m.headDim } }), m.numClasses));
  const sgd = new SGD(student.namedParameters(), { lr: 0.01, momentum: 0.9 });
  try {
    return timed(() => void distillStep({ model: student, optimizer: sgd, views: fineTuneViewOptions(m.size), norm, teacher, temperature: 1 }, batch, { stage: 'calibration', step: 0, lr: 0.01 }), steps);
  } finally {
    sgd.dispose();
    student.dispose();
  }
}

export function calibrate(m: CalibrationModel, steps = 3): StepCosts {
  const started = performance.now();
  const norm: Normalisation = { mean: NORM.mean.slice(0, m.channels), std: NORM.std.slice(0, m.channels) };
  t.manualSeed(0);
  const model = prepareModel(new SimCLRModel({ encoder: m.encoder, head: { layers: m.headLayers, outDim: m.headDim } }));
  const images = (n: number) => t.tidy(() => t.rand([n, m.channels, m.size, m.size]).mul(255).to('uint8'));
  try {
    const pb = Math.max(2, m.pretrainBatch);
    const batch = images(pb);
    const lars = new LARS(model.namedParameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-6, trustCoefficient: 0.001 });
    const pretrain = timed(() => void pretrainStep({ model, optimizer: lars, views: simclrViewOptions(m.size), norm, temperature: 0.5 }, batch, { stage: 'calibration', step: 0, lr: 0.1 }), steps) / pb;
    lars.dispose();
    batch.dispose();
    const cb = Math.max(2, m.classifierBatch);
    const classifier = prepareModel(new Classifier(model, m.numClasses));
    const cbatch = images(cb);
    const labels = t.tensor(Int32Array.from({ length: cb }, (_, i) => i % m.numClasses)).to('int64');
    const sgd = new SGD(classifier.namedParameters(), { lr: 0.01, momentum: 0.9 });
    const train = timed(() => void classifierStep({ model: classifier, optimizer: sgd, views: fineTuneViewOptions(m.size), norm }, cbatch, labels, { stage: 'calibration', step: 0, lr: 0.01 }), steps) / cb;
    // An epoch's end: its checkpoint, and the loop's own work (the next pass set up, the progress line), about 50 ms here.
    const epoch = timedCheckpoint(classifier, sgd) + 0.05;
    sgd.dispose();
    labels.dispose();
    const evaluate = inference(classifier, (forward) => timed(() => t.tidy(() => void forward(evalInput(cbatch, m.size, norm))), steps)) / cb;
    const release = holdForInference(classifier); // a teacher, as distillation holds it
    let distill: number;
    try {
      distill = timedDistill(m, classifier, cbatch, norm, steps) / cb;
    } finally {
      release();
    }
    cbatch.dispose();
    return { pretrain, train, evaluate, distill, epoch, seconds: (performance.now() - started) / 1000 };
  } finally {
    model.dispose();
  }
}
