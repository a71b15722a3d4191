// --budget on a single training command: the whole budget to its stage. Pretraining plans as
// the pipeline does (its data read, its step timed); a classifier stage times its own step
// on the run's encoder (a distillation student's at its own size) and its labeled set.
import { existsSync } from 'node:fs';
import { PlanError } from '../errors';
import { CLASSIFIER_DEFAULTS } from '../defaults';
import { openRun, encoderFor } from '../folder';
import { isInputsDataset, openTestImages, openTrainImages } from '../data';
import type { ClassifierPlan, PretrainPlan, DataPlan } from '../stages/types';
import type { PipelinePlan } from '../stages/pipeline';
import { calibrate } from './calibrate';
import { applyCompute } from '../stages/compute';
import { describePlan, onlyStage, planBudget } from './plan';
import { countsFor, lengthsOf, planWithBudget } from './index';

/** A resumed stage keeps the length it was planned with; a budget then says so and changes nothing. */
function resumed(what: string): void {
  console.log(`--resume: ${what} keeps the length it was planned with (--budget plans a new run only)`);
}

/** --budget on pretraining times the architecture it plans for: not one that weights decide (and by --dry-run). */
export function checkPretrainBudget(plan: PretrainPlan): void {
  if (!plan.resume && plan.init) throw new PlanError('--budget times the architecture it plans for: with --init give --epochs instead');
}

export async function budgetPretrain(plan: PretrainPlan, seconds: number): Promise<PretrainPlan> {
  if (plan.resume) return (resumed('pretraining'), plan);
  checkPretrainBudget(plan);
  const asPipeline: PipelinePlan = { out: plan.out, data: plan.data as DataPlan, encoder: plan.encoder, labels: [], pretrain: plan.settings, skipBadImages: plan.skipBadImages };
  const { plan: planned } = await planWithBudget(asPipeline, { seconds, split: onlyStage('pretrain') }, asPipeline);
  return { ...plan, settings: { ...plan.settings, ...planned.pretrain } };
}

export async function budgetClassifier(plan: ClassifierPlan, seconds: number): Promise<ClassifierPlan> {
  if (plan.resume) return (resumed(plan.kind), plan);
  if (!plan.run || !existsSync(plan.run)) return plan; // the stage itself says what is missing
  applyCompute(plan.compute);
  const started = performance.now();
  const { config } = openRun(plan.run);
  const s = plan.settings ?? {};
  const ds = await openTrainImages(config, { labeled: s.labeled, classes: s.classes, skipBad: plan.skipBadImages });
  const test = await openTestImages(config, undefined, plan.skipBadImages).catch(() => null);
  const decodeSeconds = (performance.now() - started) / 1000;
  const labels = isInputsDataset(ds) ? undefined : s.labels ?? CLASSIFIER_DEFAULTS[plan.kind].labels;
  const counts = countsFor(ds, labels, s.val, test?.count ?? 0);
  const run = config.pretrain.encoder;
  const encoder = plan.kind === 'distill' ? encoderFor({ depth: s.studentDepth ?? run.depth ?? 18, width: s.studentWidth ?? run.width ?? 1, sk: Boolean(run.skRatio) }, ds) : run;
  const batch = Math.max(2, Math.min(s.batch ?? CLASSIFIER_DEFAULTS[plan.kind].batch, counts.labeled || 2));
  const costs = calibrate({ encoder, headLayers: config.pretrain.headLayers, headDim: config.pretrain.headDim, size: ds.size, channels: ds.channels, pretrainBatch: 2, classifierBatch: batch, numClasses: Math.max(2, ds.classes.length) });
  ds.stored?.close();
  test?.stored?.close();
  const planned = planBudget({ seconds, split: onlyStage(plan.kind), costs, counts, decodeSeconds, pretrainBatch: 2 });
  console.log(describePlan(planned));
  return { ...plan, settings: { ...s, ...lengthsOf(planned)[plan.kind] } };
}
