// Reading a trained run back: test accuracy of its classifiers, kNN and linear evaluation
// of its pretrained encoder, and predictions for image files.
import * as t from '../torch';
import { labeledOnly, type ImageDataset } from '../data';
import { classCount, encode, evaluateClassifier, knnAccuracy, knnClassify, linearEvaluation, linearEvaluationOn } from '../train';
import { evaluateFolderStream, isFolderSpec } from './stream-eval';
import { streamPass } from './stream-pass';
import { PlanError } from './errors';
import { defaultClassifierStage, listStages, loadClassifier, openRun, pretrainedModel, stageArch, testData, trainData } from './folder';
import { withWorkers, type WorkersPlan } from './workers';
import type { ProcessGroup } from '../distributed';

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

/**
 * The run's classifiers (and with knn/linear its pretrained encoder) on the test set. With
 * workers (given, or named by the environment), each evaluates its share of the batches and
 * the hits are summed: every worker gets the one-process figures.
 */
export async function evaluateRun(plan: EvalPlan, workers?: WorkersPlan): Promise<EvalReport> {
  return withWorkers(workers, (group) => evaluateAs(plan, group));
}

async function evaluateAs(plan: EvalPlan, workers: ProcessGroup | null): Promise<EvalReport> {
  const { run, config } = openRun(plan.run);
  const spec = plan.testData || config.testData;
  // A test folder streams through once; a CSV (the user's labels) is read as a data set.
  if (spec && isFolderSpec(spec) && !/\.csv$/i.test(spec) && !config.inputs) return evaluateStreamed(plan, spec, workers);
  const testSet = await testData(config, plan.testData, plan.skipBadImages);
  const report: EvalReport = { testImages: testSet.count, skipped: testSet.skipped.bad, stages: [] };
  if (plan.knn || plan.linear) {
    const model = pretrainedModel(run, config);
    try {
      const trainSet = labeledTrainingImages(await trainData(config, plan.skipBadImages), config.data);
      if (plan.knn) report.knnTop1 = knnAccuracy(model, trainSet, testSet, config.norm, { workers });
      if (plan.linear) {
        const epochs = plan.linearEpochs ?? 30;
        report.linear = { top1: linearEvaluation(model, trainSet, testSet, config.norm, { epochs, workers }), trainLabels: trainSet.count, epochs };
      }
    } finally {
      model.dispose();
    }
  }
  const stages = stagesToEvaluate(plan);
  for (const s of stages) {
    const { model } = loadClassifier(run, s);
    try {
      report.stages.push({ stage: s, ...evaluateClassifier(model, testSet, config.norm, { workers }) });
    } finally {
      model.dispose();
    }
  }
  return report;
}

/** kNN and linear evaluation read the labeled training images only (of a user's set, those it labels). */
function labeledTrainingImages(ds: ImageDataset, source: string): ImageDataset & { labels: Int32Array } {
  const labeled = labeledOnly(ds);
  if (!labeled?.labels) throw new PlanError(`${source} has no labeled images: kNN and linear evaluation need them (--labeled DIR|FILE.csv when the run was made)`);
  return labeled as ImageDataset & { labels: Int32Array };
}

/** The classifier stages eval reports on: --stage, else every one trained (none is an error without --knn or --linear). */
export function stagesToEvaluate(plan: EvalPlan): string[] {
  const stages = plan.stage ? [plan.stage] : listStages(openRun(plan.run).run);
  if (!plan.knn && !plan.linear && stages.length === 0) throw new PlanError(`${plan.run}: no trained classifier yet (run simclr finetune --from ${plan.run}), or pass --knn`);
  return stages;
}

/** Evaluation on a test folder, streamed: decoded once, a chunk at a time, never cached. */
async function evaluateStreamed(plan: EvalPlan, dir: string, workers: ProcessGroup | null): Promise<EvalReport> {
  const { run, config } = openRun(plan.run);
  const stages = stagesToEvaluate(plan);
  const classifiers = stages.map((s) => ({ name: s, model: loadClassifier(run, s).model }));
  const encoder = plan.knn || plan.linear ? pretrainedModel(run, config) : undefined;
  try {
    const skipBad = plan.skipBadImages || config.skipBadImages;
    const pass = await evaluateFolderStream(dir, { size: config.imageSize, channels: config.channels, norm: config.norm, classifiers, encoder, skipBad, workers });
    const report: EvalReport = { testImages: pass.count, skipped: pass.skipped, stages: pass.stages };
    if (encoder && pass.features) {
      const trainSet = labeledTrainingImages(await trainData(config, plan.skipBadImages), config.data);
      const classes = classCount(trainSet);
      if (plan.knn) {
        const bank = encode(encoder, trainSet, config.norm, { workers });
        try {
          const queries = t.tidy(() => t.F.normalize(pass.features!, { dim: 1 }));
          const predicted = knnClassify({ bank, bankLabels: trainSet.labels, queries, classes });
          queries.dispose();
          report.knnTop1 = (100 * predicted.filter((p, i) => p === pass.labels[i]).length) / pass.count;
        } finally {
          bank.dispose();
        }
      }
      if (plan.linear) {
        const epochs = plan.linearEpochs ?? 30;
        const trainF = encode(encoder, trainSet, config.norm, { unit: false, workers });
        const top1 = linearEvaluationOn({ features: trainF, labels: trainSet.labels, classes }, { features: pass.features, labels: pass.labels }, { epochs });
        pass.features = null;
        report.linear = { top1, trainLabels: trainSet.count, epochs };
      }
      pass.features?.dispose();
    }
    return report;
  } finally {
    for (const c of classifiers) c.model.dispose();
    encoder?.dispose();
  }
}

export interface PredictPlan {
  run: string;
  files: string[];
  /** Default: the distilled model, else the fine-tuned one. */
  stage?: string;
  skipBadImages?: boolean;
  /** classes per image, most probable first (default 1) */
  top?: number;
}

export interface Prediction {
  file: string;
  class: string;
  probability: number;
  /** the top classes with their probabilities, most probable first */
  top: { class: string; probability: number }[];
}

export interface Predictions {
  model: string;
  predictions: Prediction[];
  /** files that could not be decoded (with skipBadImages) */
  skipped: string[];
}

/** The plan's images and the classifier it predicts with, checked before any model is loaded (and by --dry-run). */
export function checkPredictPlan(plan: PredictPlan): ReturnType<typeof openRun> & { stage: string } {
  if (plan.files.length === 0) throw new PlanError('name one or more image files, or a folder: simclr predict --model RUN a.jpg b.png, or --unlabeled DIR');
  const opened = openRun(plan.run);
  const stage = plan.stage || defaultClassifierStage(opened.run);
  if (!stage) throw new PlanError(`${plan.run}: no trained classifier to predict with`);
  stageArch(opened.run, stage);
  return { ...opened, stage };
}

export async function predictImages(plan: PredictPlan): Promise<Predictions> {
  const { run, config, stage } = checkPredictPlan(plan);
  const { model } = loadClassifier(run, stage);
  const found: (Prediction | undefined)[] = new Array(plan.files.length);
  const k = Math.max(1, Math.min(plan.top ?? 1, config.classes.length));
  try {
    const skipped = await streamPass({ files: plan.files, size: config.imageSize, channels: config.channels, norm: config.norm, skipBadImages: plan.skipBadImages }, model, (logits, positions) => {
      const best = logits.softmax(1).topk(k, 1);
      const p = best.values.data() as Float32Array;
      const c = best.indices.to('int32').data() as Int32Array;
      positions.forEach((position, i) => {
        const top = Array.from({ length: k }, (_, j) => ({ class: config.classes[c[i * k + j]!]!, probability: p[i * k + j]! }));
        found[position] = { file: plan.files[position]!, class: top[0]!.class, probability: top[0]!.probability, top };
      });
    });
    const predictions = found.filter((x): x is Prediction => x !== undefined);
    if (predictions.length === 0) throw new Error('none of the images could be decoded');
    return { model: `${plan.run}:${stage}`, predictions, skipped };
  } finally {
    model.dispose();
  }
}
