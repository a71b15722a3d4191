// Reading a trained run back: test accuracy of its classifiers, kNN and linear evaluation
// of its pretrained encoder, and predictions for image files.
import * as t from '../torch';
import { evalInput } from '../augment';
import { decodeImages, withoutBad } from '../data';
import { forwardIn, prepareModel } from '../nn';
import { evaluateClassifier, knnAccuracy, linearEvaluation } from '../train';
import { argmax } from '../util/extent';
import { PlanError } from './errors';
import { listStages, loadClassifier, openRun, pretrainedModel, testData, trainData } from './folder';

export interface EvalPlan {
  run: string;
  /** One stage (finetune-1pct, ...); default every trained classifier. */
  stage?: string;
  /** Default: the run's test set. */
  testData?: string;
  knn?: boolean;
  linear?: boolean;
  linearEpochs?: number;
  skipBadImages?: boolean;
}

export interface EvalReport {
  testImages: number;
  skipped: string[];
  knnTop1?: number;
  linear?: { top1: number; trainLabels: number; epochs: number };
  stages: { stage: string; top1: number; top5: number }[];
}

export async function evaluateRun(plan: EvalPlan): Promise<EvalReport> {
  const { run, config } = openRun(plan.run);
  const testSet = await testData(config, plan.testData, plan.skipBadImages);
  const report: EvalReport = { testImages: testSet.count, skipped: testSet.skipped.bad, stages: [] };
  if (plan.knn || plan.linear) {
    const model = pretrainedModel(run, config);
    try {
      const trainSet = await trainData(config, plan.skipBadImages);
      if (plan.knn) report.knnTop1 = knnAccuracy(model, trainSet, testSet, config.norm);
      if (plan.linear) {
        const epochs = plan.linearEpochs ?? 30;
        report.linear = { top1: linearEvaluation(model, trainSet, testSet, config.norm, { epochs }), trainLabels: trainSet.count, epochs };
      }
    } finally {
      model.dispose();
    }
  }
  const stages = plan.stage ? [plan.stage] : listStages(run);
  if (!plan.knn && !plan.linear && stages.length === 0) throw new PlanError(`${plan.run}: no trained classifier yet (run simclr finetune --from ${plan.run}), or pass --knn`);
  for (const s of stages) {
    const { model } = loadClassifier(run, s);
    try {
      report.stages.push({ stage: s, ...evaluateClassifier(model, testSet, config.norm) });
    } finally {
      model.dispose();
    }
  }
  return report;
}

export interface PredictPlan {
  run: string;
  files: string[];
  /** Default: the distilled model, else the fine-tuned one. */
  stage?: string;
  skipBadImages?: boolean;
}

export interface Predictions {
  model: string;
  predictions: { file: string; class: string; probability: number }[];
  /** files that could not be decoded (with skipBadImages) */
  skipped: string[];
}

export async function predictImages(plan: PredictPlan): Promise<Predictions> {
  if (plan.files.length === 0) throw new PlanError('name one or more image files: simclr predict --model RUN a.jpg b.png');
  const { run, config } = openRun(plan.run);
  const stages = listStages(run);
  const stage = plan.stage || stages.find((s) => s.startsWith('distill-')) || stages.find((s) => s.startsWith('finetune-')) || stages[0];
  if (!stage) throw new PlanError(`${plan.run}: no trained classifier to predict with`);
  const decoded = await decodeImages(plan.files, config.imageSize, config.channels, { skipBad: plan.skipBadImages });
  const { files, pixels } = withoutBad(plan.files, decoded.pixels, decoded.bad, config.channels * config.imageSize * config.imageSize);
  if (files.length === 0) throw new Error('none of the images could be decoded');
  const { model } = loadClassifier(run, stage);
  try {
    const probs = t.tidy(() => {
      model.eval();
      const x = t.fromBytes(pixels, [files.length, config.channels, config.imageSize, config.imageSize], 'uint8');
      return t.noGrad(() => forwardIn(prepareModel(model), evalInput(x, config.imageSize, config.norm)).softmax(1)).toArray();
    });
    const classes = config.classes.length;
    const predictions = files.map((file, i) => {
      const best = argmax(probs, i * classes, (i + 1) * classes);
      return { file, class: config.classes[best]!, probability: probs[i * classes + best]! };
    });
    return { model: `${plan.run}:${stage}`, predictions, skipped: decoded.bad.map((i) => plan.files[i]!) };
  } finally {
    model.dispose();
  }
}
