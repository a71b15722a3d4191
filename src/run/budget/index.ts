// --budget for the pipeline: the data read (and decoded the first time), a calibration of
// each kind of step at the run's size and model, then each stage's length from its share
// of the minutes. The plan is printed before training and recorded with the pipeline's
// settings, so that running it again (--resume) follows it instead of planning again.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDataset, openInputs, parseLabelSpec, parseValSpec, type ImageDataset } from '../../data';
import { encoderFor } from '../folder';
import { asPlanError, isInputsDataset, openTestImagesFor, userInputsOf, MIN_LABELS_FOR_VALIDATION } from '../data';
import { PlanError } from '../errors';
import { PRETRAIN_DEFAULTS, CLASSIFIER_DEFAULTS } from '../defaults';
import type { PipelinePlan } from '../stages/pipeline';
import { calibrate } from './calibrate';
import { describePlan, planBudget, type BudgetStage } from './plan';
import { writeAtomic } from '../../util/fs';

export { parseBudget, parseSplit, DEFAULT_SPLIT, type BudgetPlan } from './plan';
export { calibrate, type StepCosts } from './calibrate';

export interface Budget {
  seconds: number;
  split: Record<BudgetStage, number>;
}

/** The images each stage reads, as the stages will count them. */
function counts(plan: PipelinePlan, ds: ImageDataset, test: number): { pool: number; labeled: number; val: number; test: number } {
  if (isInputsDataset(ds)) {
    const labeled = ds.labeledIndices.length;
    const perClass = new Map<number, number>();
    for (const i of ds.labeledIndices) perClass.set(ds.labels![i]!, (perClass.get(ds.labels![i]!) ?? 0) + 1);
    const val = Math.min(...perClass.values()) < MIN_LABELS_FOR_VALIDATION ? 0 : Math.round(0.1 * labeled);
    return { pool: ds.count, labeled: labeled - val, val, test };
  }
  const spec = parseLabelSpec(plan.labels[0]!);
  const valSpec = parseValSpec(plan.val ?? CLASSIFIER_DEFAULTS.finetune.val);
  const val = Math.min(5000, 'count' in valSpec ? valSpec.count : Math.round(valSpec.fraction * ds.count));
  const labeled = 'fraction' in spec ? Math.round(spec.fraction * (ds.count - val)) : spec.perClass * ds.classes.length;
  return { pool: ds.count, labeled, val, test };
}

/**
 * The pipeline plan with each stage's length set from the budget, where the command line
 * did not set it. A pipeline that has started already keeps its recorded plan.
 */
export async function budgetPipeline(plan: PipelinePlan, budget: Budget, flags: PipelinePlan = plan): Promise<PipelinePlan> {
  if (existsSync(join(plan.out, 'pipeline.json'))) {
    console.log(`${plan.out}: continuing with the plan it recorded (the budget was planned when it started)`);
    // The recorded stage lengths stand: only the flags given now are checked against them.
    return { ...plan, pretrain: flags.pretrain, supervised: flags.supervised, finetune: flags.finetune, distill: flags.distill };
  }
  if (plan.labels.length > 1) throw new PlanError('--budget plans one label set: give one --labels fraction');
  const started = performance.now();
  const d = plan.data;
  const shape = { imageSize: d.imageSize ?? 'auto', channels: d.channels ?? 'auto', skipBad: plan.skipBadImages } as const;
  const inputs = userInputsOf(d);
  const ds = inputs ? await asPlanError(() => openInputs(inputs, shape)) : await openDataset(d.spec, shape);
  const test = await openTestImagesFor(d, ds, plan.skipBadImages).catch(() => null);
  const decodeSeconds = (performance.now() - started) / 1000;
  const encoder = encoderFor({ depth: 18, width: 1, sk: false, ...plan.encoder }, ds);
  const n = counts(plan, ds, test?.count ?? 0);
  // A batch larger than the pool (a small folder) is cut to the largest power of two it holds, unless a flag set it.
  const wanted = plan.pretrain?.batch ?? PRETRAIN_DEFAULTS.batch;
  const pretrainBatch = wanted > ds.count && flags.pretrain?.batch === undefined ? 2 ** Math.floor(Math.log2(ds.count)) : wanted;
  const classifierBatch = Math.max(2, Math.min(plan.finetune?.batch ?? CLASSIFIER_DEFAULTS.finetune.batch, n.labeled));
  const costs = calibrate({ encoder, headLayers: 3, headDim: 128, size: ds.size, channels: ds.channels, pretrainBatch, classifierBatch, numClasses: Math.max(2, ds.classes.length) });
  ds.stored?.close();
  test?.stored?.close();
  const planned = planBudget({ seconds: budget.seconds, split: budget.split, costs, counts: n, decodeSeconds, pretrainBatch });
  console.log(describePlan(planned));
  const out: PipelinePlan = { ...plan };
  for (const stage of ['pretrain', 'supervised', 'finetune', 'distill'] as const) {
    // The budget sets a stage's length unless a flag did (a recipe's epochs give way to it).
    const given = flags[stage] ?? {};
    const s = planned[stage];
    out[stage] = { ...plan[stage], ...(given.epochs === undefined ? { epochs: s.epochs } : {}), ...(s.maxImages && given.maxImages === undefined ? { maxImages: s.maxImages } : {}) };
  }
  if (pretrainBatch !== wanted) out.pretrain = { ...out.pretrain, batch: pretrainBatch };
  writeAtomic(join(plan.out, 'budget.json'), JSON.stringify({ budget: budget.seconds, split: budget.split, costs, counts: n, plan: planned }, null, 2));
  return out;
}

export function reportBudget(out: string, budgetSeconds: number, startedMs: number): void {
  const actual = (performance.now() - startedMs) / 1000;
  console.log(`budget ${(budgetSeconds / 60).toFixed(1)} min, used ${(actual / 60).toFixed(1)} min (${((100 * actual) / budgetSeconds).toFixed(0)}%)`);
  const file = join(out, 'budget.json');
  if (existsSync(file)) {
    const record = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeAtomic(file, JSON.stringify({ ...record, actualSeconds: Math.round(actual) }, null, 2));
  }
}
