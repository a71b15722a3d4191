// --budget for the pipeline: the data read (and decoded the first time), a calibration of
// each kind of step at the run's size and model, then each stage's length from its share
// of the minutes. The plan is printed before training and recorded with the pipeline's
// settings, so that running it again (--resume) follows it instead of planning again.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDataset, openInputs, parseLabelSpec, parseValSpec, type ImageDataset } from '../../data';
import { encoderFor } from '../folder';
import { asPlanError, isInputsDataset, openTestImagesFor, userInputsOf, MIN_LABELS_FOR_VALIDATION } from '../data';
import { PlanError } from '../errors';
import { PRETRAIN_DEFAULTS, CLASSIFIER_DEFAULTS } from '../defaults';
import type { PipelinePlan } from '../stages/pipeline';
import { calibrate, type StepCosts } from './calibrate';
import { applyCompute } from '../stages/compute';
import { BUDGET_STAGES, describePlan, planBudget, type BudgetPlan, type BudgetStage } from './plan';
import { writeAtomic } from '../../util/fs';

export { parseBudget, parseSplit, onlyStage, DEFAULT_SPLIT, type BudgetPlan } from './plan';
export { calibrate, type StepCosts } from './calibrate';

export interface Budget {
  seconds: number;
  split: Record<BudgetStage, number>;
}

export interface StageCounts {
  pool: number;
  labeled: number;
  val: number;
  test: number;
}

/**
 * The images each stage reads, as the stages will count them: the user's labeled set less
 * its validation split, or a label fraction of a fully labeled data set (none without one).
 */
export function countsFor(ds: ImageDataset, labels: string | undefined, valGiven: string | undefined, test: number): StageCounts {
  if (isInputsDataset(ds)) {
    const labeled = ds.labeledIndices.length;
    const perClass = new Map<number, number>();
    for (const i of ds.labeledIndices) perClass.set(ds.labels![i]!, (perClass.get(ds.labels![i]!) ?? 0) + 1);
    const val = labeled === 0 || Math.min(...perClass.values()) < MIN_LABELS_FOR_VALIDATION ? 0 : Math.round(0.1 * labeled);
    return { pool: ds.count, labeled: labeled - val, val, test };
  }
  if (labels === undefined || !ds.labels) return { pool: ds.count, labeled: 0, val: 0, test };
  const spec = parseLabelSpec(labels);
  const valSpec = parseValSpec(valGiven ?? CLASSIFIER_DEFAULTS.finetune.val);
  const val = Math.min(5000, 'count' in valSpec ? valSpec.count : Math.round(valSpec.fraction * ds.count));
  const labeled = 'fraction' in spec ? Math.round(spec.fraction * (ds.count - val)) : spec.perClass * ds.classes.length;
  return { pool: ds.count, labeled, val, test };
}

/** What a caller knows that the data do not say yet: the demo's labels, chosen after pretraining. */
export interface BudgetExpectations {
  /** labeled images trained on, and validation images */
  labels?: { labeled: number; val: number };
  /** work between the stages, inside the budget (the demo's choice of labels: an embedding pass over the pool) */
  reserve?: { what: string; images: number; seconds: number };
}

/**
 * The pipeline plan with each stage's length set from the budget, where the command line
 * did not set it. A pipeline that has started already keeps its recorded plan.
 */
export async function budgetPipeline(plan: PipelinePlan, budget: Budget, flags: PipelinePlan = plan): Promise<{ plan: PipelinePlan; fresh: boolean }> {
  if (existsSync(join(plan.out, 'pipeline.json'))) {
    console.log(`${plan.out}: continuing with the plan it recorded (the budget was planned when it started)`);
    // The recorded stage lengths stand: only the flags given now are checked against them.
    return { plan: { ...plan, pretrain: flags.pretrain, supervised: flags.supervised, finetune: flags.finetune, distill: flags.distill }, fresh: false };
  }
  return { plan: (await planWithBudget(plan, budget, flags)).plan, fresh: true };
}

/** What a budget cannot plan, found before anything is read (and by --dry-run). */
export function checkBudgetPlan(plan: Pick<PipelinePlan, 'labels'>): void {
  if (plan.labels.length > 1) throw new PlanError('--budget plans one label set: give one --labels fraction');
}

/** Plans the budget now (calibrating on this machine), prints the plan and writes budget.json into the run folder. */
export async function planWithBudget(plan: PipelinePlan, budget: Budget, flags: PipelinePlan = plan, expect: BudgetExpectations = {}): Promise<{ plan: PipelinePlan; planned: BudgetPlan }> {
  checkBudgetPlan(plan);
  // The steps are timed as the stages will run them: precision, layout and threads applied first.
  applyCompute(plan.compute);
  const started = performance.now();
  const d = plan.data;
  const shape = { imageSize: d.imageSize ?? 'auto', channels: d.channels ?? 'auto', skipBad: plan.skipBadImages } as const;
  const inputs = userInputsOf(d);
  const ds = inputs ? await asPlanError(() => openInputs(inputs, shape)) : await openDataset(d.spec, shape);
  const test = await openTestImagesFor(d, ds, plan.skipBadImages).catch(() => null);
  const decodeSeconds = (performance.now() - started) / 1000;
  const encoder = encoderFor({ depth: 18, width: 1, sk: false, ...plan.encoder }, ds);
  const n = { ...countsFor(ds, plan.labels[0], plan.val, test?.count ?? 0), ...expect.labels };
  // A batch larger than the pool (a small folder) is cut to the largest power of two it holds, unless a flag set it.
  const wanted = plan.pretrain?.batch ?? PRETRAIN_DEFAULTS.batch;
  const pretrainBatch = wanted > ds.count && flags.pretrain?.batch === undefined ? 2 ** Math.floor(Math.log2(ds.count)) : wanted;
  const classifierBatch = Math.max(2, Math.min(plan.finetune?.batch ?? CLASSIFIER_DEFAULTS.finetune.batch, n.labeled));
  const costs = calibrate({ encoder, headLayers: 3, headDim: 128, size: ds.size, channels: ds.channels, pretrainBatch, classifierBatch, numClasses: Math.max(2, ds.classes.length) });
  ds.stored?.close();
  test?.stored?.close();
  const planned = planBudget({ seconds: budget.seconds, split: budget.split, costs, counts: n, decodeSeconds, pretrainBatch, ...(expect.reserve ? { reserve: expect.reserve } : {}) });
  console.log(describePlan(planned));
  const out = withLengths(plan, lengthsOf(planned, flags));
  if (pretrainBatch !== wanted) out.pretrain = { ...out.pretrain, batch: pretrainBatch };
  mkdirSync(plan.out, { recursive: true });
  writeAtomic(join(plan.out, BUDGET_FILE), JSON.stringify({ budget: budget.seconds, split: budget.split, costs, counts: n, plan: planned }, null, 2));
  return { plan: out, planned };
}

export const BUDGET_FILE = 'budget.json';

/** A stage's length as its settings take it. */
export type StageLength = { epochs?: number; maxImages?: number };

/**
 * The planned stages' lengths, each where a flag did not set it (a flag's epochs or images
 * win; a recipe's epochs give way). With `replanned`, a distillation planned again without a
 * subset gets maxImages 0 (all images), replacing the earlier plan's subset.
 */
export function lengthsOf(planned: BudgetPlan, flags: Partial<Record<BudgetStage, StageLength | undefined>> = {}, replanned = false): Partial<Record<BudgetStage, StageLength>> {
  const out: Partial<Record<BudgetStage, StageLength>> = {};
  for (const stage of BUDGET_STAGES) {
    const s = planned[stage];
    if (!s) continue;
    const given = flags[stage] ?? {};
    const maxImages = s.maxImages ?? (replanned && stage === 'distill' ? 0 : undefined);
    out[stage] = { ...(given.epochs === undefined ? { epochs: s.epochs } : {}), ...(maxImages !== undefined && given.maxImages === undefined ? { maxImages } : {}) };
  }
  return out;
}

/** The pipeline plan with these lengths over its stages' settings. */
export function withLengths(plan: PipelinePlan, lengths: Partial<Record<BudgetStage, StageLength>>): PipelinePlan {
  const out: PipelinePlan = { ...plan };
  for (const stage of BUDGET_STAGES) if (lengths[stage]) out[stage] = { ...plan[stage], ...lengths[stage] };
  return out;
}

/**
 * The classifier stages planned again once pretraining is done, on the minutes the budget
 * has left (measured from `startedMs`) and the same costs and shares: pretraining's
 * calibration is a few steps, and its error would otherwise fall on the total. Recorded in
 * budget.json; null when the run has no budget record.
 */
export function replanAfterPretrain(out: string, startedMs: number): BudgetPlan | null {
  const file = join(out, BUDGET_FILE);
  if (!existsSync(file)) return null;
  const record = JSON.parse(readFileSync(file, 'utf8')) as { budget: number; split: Record<BudgetStage, number>; costs: StepCosts; counts: StageCounts; plan: BudgetPlan; replanned?: unknown };
  if (record.replanned) return null;
  const elapsed = (performance.now() - startedMs) / 1000;
  const left = Math.max(30, record.budget - elapsed - (record.plan.reserve?.seconds ?? 0));
  const shares = record.split.supervised + record.split.finetune + record.split.distill;
  if (!(shares > 0)) return null;
  const split = { pretrain: 0, supervised: record.split.supervised / shares, finetune: record.split.finetune / shares, distill: record.split.distill / shares };
  const planned = planBudget({ seconds: left, split, costs: { ...record.costs, seconds: 0 }, counts: record.counts, decodeSeconds: 0, pretrainBatch: 1 });
  console.log(`budget: pretraining done after ${(elapsed / 60).toFixed(1)} min; the other stages planned again on the ${(left / 60).toFixed(1)} min left`);
  console.log(describePlan({ ...planned, decode: 0, calibrate: 0, total: left }).split('\n').slice(1).join('\n'));
  writeAtomic(file, JSON.stringify({ ...record, plan: { ...record.plan, ...planned }, replanned: { afterSeconds: Math.round(elapsed), left: Math.round(left) } }, null, 2));
  return planned;
}

/** Prints the minutes used against the budget and records them in budget.json. */
export function reportBudget(out: string, budgetSeconds: number, actual: number): void {
  console.log(`budget ${(budgetSeconds / 60).toFixed(1)} min, used ${(actual / 60).toFixed(1)} min (${((100 * actual) / budgetSeconds).toFixed(0)}%)`);
  const file = join(out, BUDGET_FILE);
  if (existsSync(file)) {
    const record = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeAtomic(file, JSON.stringify({ ...record, actualSeconds: Math.round(actual) }, null, 2));
  }
}
