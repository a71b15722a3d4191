// The demo, in the paper's label regime and a user's order of work: Fashion-MNIST's 60,000
// training images as files, unlabeled; pretraining on them; suggest-labels choosing 130 to
// label (13 a class, as the paper's 1% of ImageNet); the simulated annotator revealing those
// labels in the CSV; then the baseline, fine-tuning and distillation on them, the whole
// pipeline under a time budget (15 minutes; --quick about 2). The baseline on as many
// random labels runs besides, outside the budget, for comparison.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeImageFolder } from '../../data';
import { defaultCacheDir } from '../../torch/cache-dir';
import { RunFolder, hasCheckpoint, PRETRAIN_CHECKPOINT } from '../../train';
import { RECIPES } from '../recipes';
import { BUDGET_FILE, DEFAULT_SPLIT, lengthsOf, planWithBudget, reportBudget, withLengths, type BudgetPlan } from '../budget';
import { runPretrain } from '../stages/pretrain';
import { runClassifierStage, stageNameFor } from '../stages/classifier';
import { reportAtTheEnd, type PipelinePlan } from '../stages/pipeline';
import type { ClassifierKind, ComputePlan, Outcome } from '../stages/types';
import { chooseDemoLabels, type DemoLabels } from './labels';
import { demoSummary } from './summary';

export interface DemoOptions {
  out: string;
  quick?: boolean;
  seed?: number;
  /** images to label (default 130) */
  count?: number;
  /** seconds (default 15 minutes; --quick 90 s) */
  budget?: number;
  compute?: ComputePlan;
}

/** The full demo and --quick: the images written once per machine, the held-back validation labels, the budget. */
export const DEMO_SIZES = {
  full: { folder: 'fashion-mnist-images', train: undefined, test: undefined, heldBack: 1000, budget: 15 * 60 },
  quick: { folder: 'fashion-mnist-images-quick', train: 10_000, test: 2_000, heldBack: 500, budget: 90 },
} as const;

export const DEMO_LABELS = 130;

/** Fashion-MNIST as image files in the cache (written once: a user's run reads files). */
async function demoImages(size: (typeof DEMO_SIZES)[keyof typeof DEMO_SIZES]): Promise<string> {
  const dir = join(defaultCacheDir(), size.folder);
  if (!existsSync(join(dir, 'done'))) console.log(`writing Fashion-MNIST as PNG files once, to ${dir}`);
  return writeImageFolder('fashion-mnist', dir, { train: size.train, test: size.test, progress: (n, total) => process.stdout.write(`\r  ${n}/${total} images${n === total ? '\n' : ''}`) });
}

/** Each stage's length: planned from the budget the first time, read from the run folder after. */
async function stageLengths(plan: PipelinePlan, seconds: number, labels: { labeled: number; val: number }, pool: number): Promise<{ plan: PipelinePlan; fresh: boolean }> {
  const file = join(plan.out, BUDGET_FILE);
  let planned: BudgetPlan;
  const fresh = !existsSync(file);
  if (!fresh) {
    planned = (JSON.parse(readFileSync(file, 'utf8')) as { plan: BudgetPlan }).plan;
    console.log(`${plan.out}: continuing with the plan it recorded`);
  } else {
    const reserve = { what: 'choosing the labels (embedding the pool, k-means)', images: pool, seconds: 5 };
    planned = (await planWithBudget(plan, { seconds, split: DEFAULT_SPLIT }, { ...plan, pretrain: {}, supervised: {}, finetune: {}, distill: {} }, { labels, reserve })).planned;
  }
  return { plan: withLengths(plan, lengthsOf(planned)), fresh };
}

/** The classifier stages: the random-label baseline (outside the budget), then the pipeline's three on the suggested labels. */
const STAGES: [ClassifierKind, keyof Pick<DemoLabels, 'random' | 'suggested'>][] = [
  ['supervised', 'random'],
  ['supervised', 'suggested'],
  ['finetune', 'suggested'],
  ['distill', 'suggested'],
];

export async function runDemo(o: DemoOptions): Promise<Outcome> {
  const size = o.quick ? DEMO_SIZES.quick : DEMO_SIZES.full;
  const seed = o.seed ?? 0;
  const count = o.count ?? DEMO_LABELS;
  const folder = await demoImages(size);
  const pool = join(folder, 'train');
  const r = RECIPES.laptop;
  const base: PipelinePlan = { out: o.out, data: { unlabeled: [pool], test: join(folder, 'test') } as PipelinePlan['data'], encoder: r.encoder, labels: [], seed, compute: o.compute, pretrain: r.pretrain, supervised: r.supervised, finetune: r.finetune, distill: r.distill };
  const started = performance.now();
  const { plan, fresh } = await stageLengths(base, o.budget ?? size.budget, { labeled: count, val: size.heldBack }, size.train ?? 60_000);
  const run = new RunFolder(o.out);
  const pretrained = await runPretrain({ out: o.out, resume: hasCheckpoint(run, PRETRAIN_CHECKPOINT), data: plan.data, encoder: plan.encoder, settings: { seed, ...plan.pretrain }, compute: o.compute });
  if (pretrained === 'stopped') return 'stopped';
  const labels = await chooseDemoLabels({ run: o.out, pool, count, heldBack: size.heldBack, seed });
  let outside = 0;
  for (const [kind, set] of STAGES) {
    const settings = { seed, valFile: labels.heldBack, labeled: labels[set], ...plan[kind] };
    const stageStarted = performance.now();
    const outcome = await runClassifierStage({ kind, run: o.out, resume: existsSync(run.path(`${stageNameFor(kind, { labels: '', labeled: labels[set] })}.json`)), settings, compute: o.compute });
    if (outcome === 'stopped') return 'stopped';
    if (set === 'random') outside += performance.now() - stageStarted;
  }
  const pipelineSeconds = (performance.now() - started - outside) / 1000;
  await reportAtTheEnd(o.out, seed);
  console.log(`\n${demoSummary(run, { labels: labels.count, heldBack: size.heldBack })}`);
  // A continued run's minutes are this session's only: the budget is compared with a run planned and finished here.
  if (fresh) reportBudget(o.out, o.budget ?? size.budget, pipelineSeconds);
  else console.log(`continued: this session's ${(pipelineSeconds / 60).toFixed(1)} min are not compared with the budget (budget.json keeps the first run's)`);
  console.log(`the baseline on random labels, besides the budget: ${(outside / 60000).toFixed(1)} min`);
  return 'finished';
}
