// `simclr pipeline`: flags -> a pipeline plan. Stage options arrive with their stage's
// prefix (--finetune-epochs 20) and reach each stage as typed settings.
import type { ParseResult } from './options';
import type { pipelineOptions } from './specs';
import { CLASSIFIER_SETTINGS, PRETRAIN_SETTINGS, computePlan, dataPlan, encoderPlan, exitFor, pick } from './train-commands';
import { RunFolder } from '../train';
import { PlanError, leadProcess, resultsTable, runPipeline, type ClassifierSettings, type PipelinePlan, type PretrainSettings } from '../run';
import { withRecipe } from '../run/recipes';
import { userInputsOf } from '../run/data';
import { budgetPipeline, lengthsOf, parseBudget, parseSplit, replanAfterPretrain, reportBudget, DEFAULT_SPLIT, type Budget } from '../run/budget';
import { UsageError } from './options';

type Parse = Pick<ParseResult<typeof pipelineOptions>, 'values' | 'given'>;

/** The plan a pipeline command line describes: the given options only, each stage's under its prefix. */
export function pipelinePlan({ values, given }: Parse): PipelinePlan {
  const v = values as Record<string, unknown>;
  const data = dataPlan(v, given);
  const userData = userInputsOf(data) !== null;
  if (!data?.spec && !userData) throw new PlanError('--unlabeled DIR with --labeled DIR|FILE.csv (your images), or --data SPEC (an image folder, fashion-mnist, cifar10-bin:DIR, ...), is required');
  if (userData && !data?.labeled) throw new PlanError('the pipeline fine-tunes on labeled images: give --labeled DIR|FILE.csv too. With none yet, run simclr pretrain --unlabeled DIR, then simclr suggest-labels to choose which to label');
  if (userData && given.has('labels')) throw new PlanError('--labels draws labels from a fully labeled --data; with --labeled every labeled image is used');
  const classifier = (stage: string) => pick<ClassifierSettings>(v, given, CLASSIFIER_SETTINGS.filter((n) => !['labeled', 'classes', 'labels', 'labels-file', 'val', 'val-file'].includes(n)), `${stage}-`);
  return {
    out: values.out ?? '',
    resume: values.resume,
    data: (userData ? { ...data } : { ...data, spec: data!.spec }) as PipelinePlan['data'],
    encoder: encoderPlan(v, given),
    labels: userData ? [] : values.labels.split(',').map((s) => s.trim()).filter(Boolean),
    ...(given.has('seed') ? { seed: values.seed } : {}),
    ...pick<{ val: string; valFile: string }>(v, given, ['val', 'val-file']),
    ...(given.has('skip-bad-images') ? { skipBadImages: values.skipBadImages } : {}),
    compute: computePlan(v, given),
    ...(v.pretrainInit ? { init: String(v.pretrainInit) } : {}),
    pretrain: pick<PretrainSettings>(v, given, PRETRAIN_SETTINGS, 'pretrain-'),
    supervised: classifier('supervised'),
    finetune: classifier('finetune'),
    distill: classifier('distill'),
  };
}

export async function runPipelineAndReport(plan: PipelinePlan, howToContinue?: string, budget?: Budget, flags?: PipelinePlan): Promise<number> {
  const started = performance.now();
  const planned = budget ? await budgetPipeline(plan, budget, flags) : { plan, fresh: false };
  // With a budget, the classifier stages are planned again on the minutes left after pretraining (a flag's epochs stand).
  const afterPretrain = budget
    ? () => {
        const replanned = replanAfterPretrain(plan.out, started);
        return replanned && lengthsOf(replanned, flags, true);
      }
    : undefined;
  const outcome = await runPipeline({ ...planned.plan, ...(afterPretrain ? { afterPretrain } : {}) });
  if (outcome === 'finished' && leadProcess()) console.log(`\n${resultsTable(new RunFolder(plan.out))}`);
  // A continued run's minutes are this session's only: budget.json keeps the first run's figure.
  if (budget && outcome === 'finished' && planned.fresh) reportBudget(plan.out, budget.seconds, (performance.now() - started) / 1000);
  return exitFor('the pipeline', outcome, howToContinue);
}

/** --budget and --budget-split, checked; planning runs in one process (with workers, give the epochs). */
export function budgetOf({ values, given }: Parse): Budget | undefined {
  if (!values.budget) return undefined;
  const v = values as Record<string, unknown>;
  if (Number(v.nproc ?? 1) > 1 || Number(v.nnodes ?? 1) > 1 || process.env.WORLD_SIZE) throw new UsageError('--budget plans in one process; with workers give each stage its epochs (--pretrain-epochs, ...)');
  try {
    return { seconds: parseBudget(values.budget), split: given.has('budget-split') ? parseSplit(values.budgetSplit) : DEFAULT_SPLIT };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The pipeline a command line describes: its budget, the flags' plan, and the plan with the recipe under the flags. */
export function pipelineFromFlags(parsed: Parse): { plan: PipelinePlan; flags: PipelinePlan; budget?: Budget } {
  const budget = budgetOf(parsed);
  const flags = pipelinePlan(parsed);
  const { plan, sources } = withRecipe(flags, parsed.values.recipe);
  return { plan: { ...plan, settingSources: { recipe: parsed.values.recipe, ...(budget ? { budget: parsed.values.budget! } : {}), ...sources } }, flags, ...(budget ? { budget } : {}) };
}

export const pipelineCommand = (parsed: Parse): Promise<number> => {
  const { plan, flags, budget } = pipelineFromFlags(parsed);
  return runPipelineAndReport(plan, undefined, budget, flags);
};
