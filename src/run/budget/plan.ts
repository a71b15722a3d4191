// A time budget divided between a pipeline's stages: each stage's share of the minutes (the
// demo's validated proportions unless --budget-split says), less its evaluation, turned
// into epochs, or into one epoch on a seeded subset where less than one epoch fits.
import type { StepCosts } from './calibrate';

/** '20m', '2h', '90s', '1h30m', or a number of minutes. */
export function parseBudget(text: string): number {
  const s = text.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 60;
  const m = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?:in)?)?(?:(\d+(?:\.\d+)?)s)?$/.exec(s);
  const seconds = m ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) : NaN;
  if (!m || !(seconds >= 30)) throw new RangeError(`--budget must be a time of at least 30 seconds such as 20m, 2h, 90s or 1h30m, got '${text}'`);
  return seconds;
}

export const BUDGET_STAGES = ['pretrain', 'supervised', 'finetune', 'distill'] as const;
export type BudgetStage = (typeof BUDGET_STAGES)[number];

/**
 * The demo's proportions (bench/demo-settings.md: pretraining 7 epochs, the baseline 120,
 * fine-tuning 60, distillation 4 on Fashion-MNIST at 1% of the labels), rounded.
 */
export const DEFAULT_SPLIT: Record<BudgetStage, number> = { pretrain: 0.6, supervised: 0.06, finetune: 0.06, distill: 0.28 };

/** The whole budget to one stage: --budget on a single training command. */
export const onlyStage = (stage: BudgetStage): Record<BudgetStage, number> => Object.fromEntries(BUDGET_STAGES.map((s) => [s, s === stage ? 1 : 0])) as Record<BudgetStage, number>;

export function parseSplit(text: string): Record<BudgetStage, number> {
  const parts = text.split(',').map((p) => Number(p.trim()));
  if (parts.length !== 4 || parts.some((p) => !(p >= 0)) || parts.reduce((a, b) => a + b, 0) <= 0) {
    throw new RangeError(`--budget-split must be four shares for pretrain, supervised, finetune and distill, such as 60,6,6,28; got '${text}'`);
  }
  const total = parts.reduce((a, b) => a + b, 0);
  return Object.fromEntries(BUDGET_STAGES.map((s, i) => [s, parts[i]! / total])) as Record<BudgetStage, number>;
}

export interface BudgetInputs {
  seconds: number;
  split: Record<BudgetStage, number>;
  costs: StepCosts;
  /** images: pretraining and distillation's pool, the labeled ones trained on, validation, test */
  counts: { pool: number; labeled: number; val: number; test: number };
  /** pretraining's batch: an epoch drops its last partial batch */
  pretrainBatch: number;
  /** the first decoding of the images, already spent */
  decodeSeconds: number;
  /** work between the stages that the budget holds time for: an evaluation pass over this many images, and fixed seconds */
  reserve?: { what: string; images: number; seconds: number };
}

export interface StagePlan {
  epochs: number;
  /** one epoch on this many images, where less than an epoch fits */
  maxImages?: number;
  /** planned seconds: training, and evaluation (validation and the test set) */
  train: number;
  evaluate: number;
}

/** A stage with no share of the budget (a single-stage command's others) has no plan. */
export type BudgetPlan = Partial<Record<BudgetStage, StagePlan>> & { decode: number; calibrate: number; total: number; reserve?: { what: string; seconds: number } };

/** Seconds per image of each stage's training. */
function perImage(stage: BudgetStage, c: StepCosts): number {
  if (stage === 'pretrain') return c.pretrain;
  if (stage === 'distill') return c.distill ?? c.train + c.evaluate; // the student's step and the teacher's forward pass
  return c.train;
}

/** A stage's training takes this much more than its calibrated steps (loading, logging, checkpoints). */
export const TRAIN_OVERHEAD = 1.05;

export function planBudget(b: BudgetInputs): BudgetPlan {
  const reserve = b.reserve ? { what: b.reserve.what, seconds: b.reserve.images * b.costs.evaluate + b.reserve.seconds } : undefined;
  const left = Math.max(0, b.seconds - b.decodeSeconds - b.costs.seconds - (reserve?.seconds ?? 0));
  const plan = { decode: b.decodeSeconds, calibrate: b.costs.seconds, total: b.seconds, ...(reserve ? { reserve } : {}) } as BudgetPlan;
  for (const stage of BUDGET_STAGES) {
    if (!(b.split[stage] > 0)) continue;
    const share = left * b.split[stage];
    const images = stage === 'pretrain' ? Math.max(b.pretrainBatch, Math.floor(b.counts.pool / b.pretrainBatch) * b.pretrainBatch) : stage === 'distill' ? b.counts.pool : b.counts.labeled;
    // A classifier stage evaluates its test set once and validates at most a tenth of its training.
    const evaluate = stage === 'pretrain' ? 0 : (b.counts.test + b.counts.val) * b.costs.evaluate;
    const train = Math.max(0, (share - evaluate) / TRAIN_OVERHEAD);
    const unit = perImage(stage, b.costs);
    // Each epoch ends with a checkpoint: stages of many short epochs (a few labels) pay it often.
    const perEpoch = b.costs.epoch ?? 0;
    const fit = train / (Math.max(1, images) * unit + perEpoch);
    const epochs = Math.floor(fit);
    const onPool = stage === 'pretrain' || stage === 'distill';
    const step = stage === 'pretrain' ? b.pretrainBatch : 1;
    if (onPool && epochs >= 1 && epochs < 20 && fit - epochs > 0.05) {
      // A few epochs and a fraction: one epoch more, each on a seeded subset, so that the fraction is not lost.
      const whole = epochs + 1;
      const maxImages = Math.max(step, Math.floor((train - whole * perEpoch) / whole / unit / step) * step);
      plan[stage] = { epochs: whole, maxImages, train: whole * (maxImages * unit + perEpoch), evaluate };
    } else if (epochs >= 1) {
      const n = Math.min(epochs, 1000);
      plan[stage] = { epochs: n, train: n * (images * unit + perEpoch), evaluate };
    } else {
      // Less than one epoch: one epoch on a seeded subset, at least a batch's worth (pretraining
      // drops a partial batch, so its subset is whole batches).
      const maxImages = Math.max(stage === 'pretrain' ? step : 64, Math.floor((train - perEpoch) / unit / step) * step);
      plan[stage] = { epochs: 1, ...(onPool ? { maxImages: Math.min(maxImages, images) } : {}), train: Math.min(maxImages, images) * unit + perEpoch, evaluate };
    }
  }
  return plan;
}

const min = (s: number): string => `${(s / 60).toFixed(1)} min`;

export function describePlan(p: BudgetPlan): string {
  const lines = [`budget ${min(p.total)}: decoding ${min(p.decode)} (done), calibration ${min(p.calibrate)} (done)`];
  for (const stage of BUDGET_STAGES) {
    const s = p[stage];
    if (!s) continue;
    const length = `${s.epochs} epoch${s.epochs === 1 ? '' : 's'}${s.maxImages ? ` on ${s.maxImages} images` : ''}`;
    lines.push(`  ${stage.padEnd(11)} ${length.padEnd(24)} training ${min(s.train)}${s.evaluate ? `, evaluation ${min(s.evaluate)}` : ''}`);
  }
  if (p.reserve) lines.push(`  ${p.reserve.what}: ${min(p.reserve.seconds)}`);
  return lines.join('\n');
}
