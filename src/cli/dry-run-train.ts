// --dry-run's plans of the commands that make or train a run: pretrain, the classifier
// stages, the pipeline, the demo and import. Each builds the plan its command builds (the
// same functions, the same checks), then checks the inputs and describes the stages.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DryInput, DryPlan, Planner, Row } from './dry-run';
import { classifierPlanOf, pretrainPlanOf, stageBudgetOf } from './train-commands';
import { pipelineFromFlags } from './pipeline';
import { demoSettings } from './demo';
import { importPlanOf } from './import';
import { CLASSIFIER_DEFAULTS, PRETRAIN_DEFAULTS, DEMO_SIZES, DEMO_LABELS, type ClassifierKind, type ClassifierSettings, type EncoderPlan, type PretrainSettings, type PipelinePlan, type DataPlan } from '../run';
import { checkPretrainBatch, checkPretrainPlan, noKnnBank, resumesRun } from '../run/stages/pretrain';
import { checkClassifierPlan, stageNameFor, teacherStage } from '../run/stages/classifier';
import { checkPipelinePlan } from '../run/stages/pipeline';
import { defined } from '../run/stages/resume';
import { checkImportPlan } from '../run/import';
import { checkBudgetPlan, DEFAULT_SPLIT, type Budget } from '../run/budget';
import { BUDGET_STAGES, onlyStage, type BudgetStage } from '../run/budget/plan';
import { checkPretrainBudget } from '../run/budget/stage';
import { RECIPES } from '../run/recipes';
import { checkPretrained, holdsRun, stageArch } from '../run/folder';
import { testSetOf, userInputsOf } from '../run/data';
import { checkDataPlan, checkIdFile, checkNewTestSet, checkRun, checkSpec, checkStageTestSet, checkTrainImages, checkWeights } from '../run/check-inputs';
import { defaultCacheDir } from '../torch/cache-dir';

const minutes = (seconds: number): string => `${(seconds / 60).toFixed(1)} min`;
const NO_TEST = "none: a stage's results are its validation figures (--test-data DIR|FILE.csv adds a test set)";

export function encoderText(e: Partial<EncoderPlan> | undefined): string {
  const zero = e?.zeroInitResidual ? ', zero-init residual' : '';
  return `ResNet-${e?.depth ?? 18}, width ${e?.width ?? 1}${e?.sk ? ', selective kernels' : ''}${zero}`;
}

/** A stage's length: its epochs, or its minutes of the budget where the epochs are set after timing. */
function length(epochs: number, given: boolean, budgetSeconds?: number): string {
  if (budgetSeconds !== undefined && !given) return `epochs from its ${minutes(budgetSeconds)} of the budget (set once a few steps are timed)`;
  return `${epochs} epoch${epochs === 1 ? '' : 's'}`;
}

const LOCAL_BATCH_NORM = 'local batch norm (with workers)';

/**
 * Pretraining's main settings; with a budget, epochs a flag gave stand (`fixed`) and the
 * others are set from the stage's minutes.
 */
export function pretrainText(given: Partial<PretrainSettings> | undefined, budgetSeconds?: number, fixed = given?.epochs !== undefined): string {
  const s = { ...PRETRAIN_DEFAULTS, ...defined(given) };
  const lr = s.lr ?? `auto (1.0 at 32px or less, else ${s.lrScaling === 'sqrt' ? '0.075' : '0.3'})`;
  const extra = [s.maxImages ? `on ${s.maxImages} images` : '', s.knn ? 'kNN monitor' : '', s.batchNorm === 'local' ? LOCAL_BATCH_NORM : ''].filter(Boolean);
  return `pretrain: ${length(s.epochs, fixed, budgetSeconds)}, batch ${s.batch}, LARS lr ${lr} x ${s.lrScaling} scaling, temperature ${s.temperature ?? 'auto'}, crops ${s.cropMin}-1, seed ${s.seed}${extra.length ? `, ${extra.join(', ')}` : ''}`;
}

export function classifierText(kind: ClassifierKind, name: string, given: Partial<ClassifierSettings> | undefined, budgetSeconds?: number, fixed = given?.epochs !== undefined): string {
  const s = { ...CLASSIFIER_DEFAULTS[kind], ...defined(given) };
  const own = kind === 'finetune' ? [`from head layer ${s.fromHeadLayer ?? 1}`] : kind === 'distill' ? [`temperature ${s.temperature ?? 1}`, ...(s.studentDepth || s.studentWidth ? [`student ResNet-${s.studentDepth ?? "the teacher's depth"}, width ${s.studentWidth ?? "the teacher's"}`] : [])] : [];
  if (s.batchNorm === 'local') own.push(LOCAL_BATCH_NORM);
  const val = s.valFile ? `--val-file ${s.valFile}` : s.val;
  return `${name}: ${length(s.epochs, fixed, budgetSeconds)}, batch ${s.batch}, SGD lr ${s.lr}, weight decay ${s.weightDecay}, validation ${val}, seed ${s.seed}${own.length ? `, ${own.join(', ')}` : ''}`;
}

/** A budget's shares in minutes; the real plan times each stage's steps first, so epochs come later. */
function budgetText(seconds: number, split: Record<BudgetStage, number>): string {
  const shares = BUDGET_STAGES.filter((s) => split[s] > 0).map((s) => `${s} ${Math.round(100 * split[s])}% (${minutes(seconds * split[s])})`);
  return `${minutes(seconds)}: ${shares.join(', ')}; the first read of the images and a short timing of each stage's steps come out of it, then each stage's epochs (or images) are set from its share`;
}

/** What a new run's pretraining is checked against: the kNN monitor, and its batch where no budget cuts it to the images. */
interface NewRun {
  knn?: boolean;
  batch?: { batchSize: number; maxImages?: number };
  worldSize: number;
}

/** A new run's data rows: the images, the test set and, for the kNN monitor, what it compares with. */
async function newRunRows(d: Partial<DataPlan> | undefined, o: NewRun): Promise<Row[]> {
  const data = await checkDataPlan(d);
  const test = await checkNewTestSet(d);
  if (o.batch && data.count !== undefined) checkPretrainBatch(o.batch, data.count, { worldSize: o.worldSize });
  const knn = o.knn ?? false;
  if (knn && !data.labeled) throw noKnnBank();
  if (knn && !test) testSetOf({ data: d?.spec ?? '', testData: null, inputs: userInputsOf(d) ?? undefined });
  const size = d?.imageSize !== undefined || d?.channels !== undefined ? [['images', `${d.imageSize ?? 'auto'} px, channels ${d.channels ?? 'auto'}`] as Row] : [];
  return [['data', data.text], ['test set', test ?? NO_TEST], ...size];
}

async function planPretrain({ values, given, worldSize }: DryInput): Promise<DryPlan> {
  // --resume with the images starts a run where the folder holds none, as the command decides.
  const flags = pretrainPlanOf(values, given);
  const plan = { ...flags, resume: resumesRun(flags) };
  const seconds = stageBudgetOf(values, given);
  checkPretrainPlan(plan);
  if (seconds) checkPretrainBudget(plan);
  const batch = seconds && plan.settings?.batch === undefined ? undefined : { batchSize: plan.settings?.batch ?? PRETRAIN_DEFAULTS.batch, maxImages: plan.settings?.maxImages ?? 0 };
  const fresh = async (): Promise<Row[]> => [...(await newRunRows(plan.data, { knn: plan.settings?.knn, ...(batch ? { batch } : {}), worldSize })), ['run folder', `${plan.out} (new)`]];
  const rows: Row[] = plan.resume ? [['run folder', `${checkRun(plan.out).text}; continued from its last checkpoint (--resume)`]] : await fresh();
  if (plan.init) rows.push(['weights', await checkWeights(plan.init)]);
  if (!plan.resume) rows.push(['encoder', plan.init ? 'as the weights file holds it (the model options confirm it)' : encoderText(plan.encoder)]);
  if (seconds) rows.push(['budget', budgetText(seconds, onlyStage('pretrain'))]);
  return { rows, stages: [pretrainText(plan.settings, seconds && !plan.resume ? seconds : undefined)], computes: true, writes: [`${plan.out}/ (config.json, pretrain checkpoint, metrics.jsonl)`] };
}

function planClassifier(kind: ClassifierKind): Planner {
  return async ({ values, given }) => {
    const plan = classifierPlanOf(kind, values, given);
    const seconds = stageBudgetOf(values, given);
    const labels = checkClassifierPlan(plan);
    const { run, config, text } = checkRun(plan.run);
    const s = plan.settings ?? {};
    const labeled = s.labeled ?? config.inputs?.labeled ?? undefined;
    const name = stageNameFor(kind, { labels, labeled, labelsFile: s.labelsFile });
    if (kind === 'finetune') checkPretrained(run);
    if (kind === 'distill') stageArch(run, teacherStage(run, { labels, labeled, labelsFile: s.labelsFile }));
    const train = await checkTrainImages(config, { labeled: s.labeled, classes: s.classes });
    const rows: Row[] = [['run folder', text], ['images', train.text]];
    if (!train.inputs) rows.push(['labels', s.labelsFile ? checkIdFile(s.labelsFile, '--labels-file') : `${labels} of the labeled images, stratified, drawn by --seed (kept as labels-*.txt)`]);
    if (s.valFile) rows.push(['validation', checkIdFile(s.valFile, '--val-file')]);
    if (kind === 'distill') rows.push(['teacher', teacherStage(run, { labels, labeled, labelsFile: s.labelsFile })]);
    rows.push(['test set', (await checkStageTestSet(config)) ?? NO_TEST]);
    if (seconds) rows.push(['budget', plan.resume ? `${minutes(seconds)}: unused with --resume (the stage keeps its planned length)` : budgetText(seconds, onlyStage(kind))]);
    const resume = plan.resume ? ' (continued from its last checkpoint: --resume)' : '';
    return { rows, stages: [classifierText(kind, name, s, seconds && !plan.resume ? seconds : undefined) + resume], computes: true, writes: [`${name}.* (checkpoint, settings, results) in ${plan.run}`] };
  };
}

/**
 * The pipeline's stages in order: pretraining, then per label set the baseline, fine-tuning
 * and distillation. Under a budget a recipe's epochs give way; a flag's stand.
 */
function pipelineStages(plan: PipelinePlan, flags: PipelinePlan, budget: Budget | undefined): string[] {
  const share = (stage: BudgetStage) => (budget ? budget.seconds * budget.split[stage] : undefined);
  const fixed = (stage: BudgetStage) => flags[stage]?.epochs !== undefined;
  const stages = [pretrainText({ ...(plan.seed !== undefined ? { seed: plan.seed } : {}), ...plan.pretrain }, share('pretrain'), fixed('pretrain'))];
  for (const labels of plan.data.labeled ? [''] : plan.labels) {
    for (const kind of ['supervised', 'finetune', 'distill'] as const) {
      const name = stageNameFor(kind, { labels, labeled: plan.data.labeled });
      stages.push(classifierText(kind, name, { ...(plan.seed !== undefined ? { seed: plan.seed } : {}), ...defined({ val: plan.val, valFile: plan.valFile }), ...plan[kind] }, share(kind), fixed(kind)));
    }
  }
  return [...stages, 'report.html: results, curves, the classifier on the test set, views, the embedding map'];
}

async function planPipeline(input: DryInput): Promise<DryPlan> {
  const { plan, flags, budget } = pipelineFromFlags(input as unknown as Parameters<typeof pipelineFromFlags>[0]);
  checkPipelinePlan(plan);
  if (budget) checkBudgetPlan(plan);
  const continued = holdsRun(plan.out);
  checkPretrainPlan({ out: plan.out, resume: Boolean(plan.resume) || continued, data: plan.data, ...(plan.init ? { init: plan.init } : {}) });
  // Under a budget the batch is cut to the images unless a flag set it.
  const batch = budget && flags.pretrain?.batch === undefined ? undefined : { batchSize: plan.pretrain?.batch ?? PRETRAIN_DEFAULTS.batch, maxImages: plan.pretrain?.maxImages ?? 0 };
  const fresh = async (): Promise<Row[]> => [...(await newRunRows(plan.data, { knn: plan.pretrain?.knn, ...(batch ? { batch } : {}), worldSize: input.worldSize })), ['run folder', `${plan.out} (new)`]];
  const rows: Row[] = continued || plan.resume ? [['run folder', `${checkRun(plan.out).text}; continued where it stopped (its recorded settings stand)`]] : await fresh();
  if (plan.init) rows.push(['weights', await checkWeights(plan.init)]);
  rows.push(['recipe', input.values.recipe === 'paper' ? "paper (the stages' defaults)" : `${input.values.recipe} (its settings under the flags given)`]);
  rows.push(['encoder', encoderText(plan.encoder)]);
  if (!plan.data.labeled) rows.push(['labels', `${plan.labels.join(', ')} of the labeled images, each a label set of its own`]);
  if (budget) rows.push(['budget', existsSync(join(plan.out, 'pipeline.json')) ? `${minutes(budget.seconds)}: the run continues with the plan it recorded` : budgetText(budget.seconds, budget.split)]);
  return { rows, stages: pipelineStages(plan, flags, budget), computes: true, writes: [`${plan.out}/ (config, checkpoints, results.json, report.html)`] };
}

async function planDemo({ values }: DryInput): Promise<DryPlan> {
  const { budget, out } = demoSettings(values as { budget?: string; out?: string });
  const size = values.quick ? DEMO_SIZES.quick : DEMO_SIZES.full;
  const folder = join(defaultCacheDir(), size.folder);
  const images = existsSync(join(folder, 'done')) ? `Fashion-MNIST as PNG files in ${folder} (written before)` : `${(await checkSpec('fashion-mnist')).text}; written once as PNG files to ${folder}`;
  const seconds = budget ?? size.budget;
  const count = Number(values.count ?? DEMO_LABELS);
  const share = (stage: BudgetStage) => seconds * DEFAULT_SPLIT[stage];
  const seed = Number(values.seed ?? 0);
  // The laptop recipe's settings; the budget sets every stage's length.
  const r = RECIPES.laptop;
  const stages = [
    pretrainText({ ...r.pretrain, epochs: undefined, seed }, share('pretrain')),
    `suggest-labels: ${count} images chosen to label (typical), their labels revealed by the simulated annotator`,
    classifierText('supervised', `supervised on ${count} random labels, for comparison (outside the budget)`, { ...r.supervised, epochs: undefined, seed }, share('supervised')),
    ...(['supervised', 'finetune', 'distill'] as const).map((kind) => classifierText(kind, `${kind} on the chosen labels`, { ...r[kind], epochs: undefined, seed }, share(kind))),
    'report.html and the summary',
  ];
  const rows: Row[] = [['images', images], ['run folder', `${out}${existsSync(join(out, 'config.json')) ? ' (continued)' : ' (new)'}`], ['recipe', 'laptop: ResNet-18, width 0.25'], ['budget', budgetText(seconds, DEFAULT_SPLIT)]];
  return { rows, stages, computes: true, writes: [`${out}/`, ...(images.includes('written before') ? [] : [folder])] };
}

async function planImport({ values, given, positionals }: DryInput): Promise<DryPlan> {
  const plan = importPlanOf(values, given, positionals);
  checkImportPlan(plan);
  const rows: Row[] = [['weights', await checkWeights(plan.file)], ...(await newRunRows(plan.data, { worldSize: 1 })), ['run folder', `${plan.out} (new)`]];
  if (plan.data.imageSize === undefined) rows.push(['images', "the weights' size: 224 px (an export of ours: its own)"]);
  const stage = `import: the weights as the run's pretrained encoder, with their projection head or a fresh one (seed ${plan.seed ?? 0})`;
  return { rows, stages: [stage], computes: true, writes: [`${plan.out}/ (config.json, pretrain checkpoint)`] };
}

export const TRAINING_PLANS = {
  pretrain: planPretrain,
  finetune: planClassifier('finetune'),
  supervised: planClassifier('supervised'),
  distill: planClassifier('distill'),
  pipeline: planPipeline,
  demo: planDemo,
  import: planImport,
} satisfies Record<string, Planner>;
