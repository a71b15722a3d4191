// --dry-run's plans of the commands that read a run or images without training: eval,
// suggest-labels, label, embed, predict, export, serve, report, data, views and info. Each
// runs its command's own checks, then describes what it would read, compute and write.
import type { DryInput, DryPlan, Planner, Row } from './dry-run';
import { stagesToEvaluate } from '../run';
import { checkEmbedPlan } from '../run/embed';
import { checkPredictPlan } from '../run/evaluate';
import { checkSuggestPlan } from '../run/suggest';
import { checkPretrained, classifierStage, parseLabels, stageArch } from '../run/folder';
import { checkImageFiles, checkInputs, checkRun, checkRunTestSet, checkSpec, counted, inputError } from '../run/check-inputs';
import { reportStage } from '../report/analysis';
import { listImages, parseClassList } from '../data';
import { LabelSheet } from '../label';
import { defaultCacheDir } from '../torch/cache-dir';
import { folderImages } from './train-commands';
import { suggestPlanOf } from './suggest';
import { labelClasses } from './label';
import { requireEmbedOut } from './embed';
import { checkExportOptions } from './export';
import { requireServeModel } from './serve';
import { requireReportModel } from './report';
import { checkLabelsOption, requireSpec } from './data';
import { requireViewsFolder } from './views';
import type { COMMANDS } from './specs';
import type { Parsed } from './options';

type Values<C extends keyof typeof COMMANDS> = Parsed<(typeof COMMANDS)[C]['options']>;
const valuesOf = <C extends keyof typeof COMMANDS>(input: DryInput): Values<C> => input.values as Values<C>;

async function planEval(input: DryInput): Promise<DryPlan> {
  const o = valuesOf<'eval'>(input);
  const { run, config, text } = checkRun(o.model ?? '');
  const test = await checkRunTestSet(config, o.testData);
  const stages = stagesToEvaluate({ run: o.model ?? '', stage: o.stage, knn: o.knn, linear: o.linear });
  for (const s of stages) stageArch(run, s);
  if (o.knn || o.linear) checkPretrained(run);
  const steps = [
    ...stages.map((s) => `${s}: top-1 and top-5 on the test set`),
    ...(o.knn ? ['the pretrained encoder: kNN accuracy (k=200, T=0.1) against the labeled training images'] : []),
    ...(o.linear ? [`the pretrained encoder: linear evaluation, ${o.linearEpochs} epochs on every training label`] : []),
  ];
  return { rows: [['run folder', text], ['test set', test]], stages: steps, computes: true };
}

async function planSuggest(input: DryInput): Promise<DryPlan> {
  const o = valuesOf<'suggest-labels'>(input);
  const plan = suggestPlanOf(o, input.given);
  const { inputs, stage } = checkSuggestPlan(plan);
  const pool = await checkInputs(inputs);
  const sheet = plan.sheet ?? plan.out.replace(/(\.csv)?$/i, '.png');
  const steps = [
    "embed the images with the run's pretrained encoder",
    ...(stage ? [`ask ${stage} how sure it is of each`] : []),
    `choose ${counted(plan.count, 'image')} to label (${plan.strategy}, seed ${plan.seed}); the labeled ones count as covered`,
  ];
  return { rows: [['run folder', checkRun(plan.run).text], ['images', pool.text]], stages: steps, computes: true, writes: [`${plan.out} (path, an empty label column, why each was chosen)`, `${sheet} (a contact sheet)`] };
}

async function planLabel(input: DryInput): Promise<DryPlan> {
  const o = valuesOf<'label'>(input);
  let sheet: LabelSheet;
  let classes: string[];
  try {
    sheet = new LabelSheet(o.suggestions ?? '');
    classes = labelClasses(sheet, o.classes ? parseClassList(o.classes) : []);
  } catch (e) {
    throw inputError(e);
  }
  const done = sheet.rows.filter((r) => r.label || r.skipped).length;
  const rows: Row[] = [
    ['suggestions', `${o.suggestions}: ${counted(sheet.rows.length, 'image')}, ${done} answered, ${sheet.rows.length - done} to go`],
    ['classes', classes.join(', ')],
    ['page', `http://${o.host}:${o.port}/ (nothing listens in a dry run)`],
  ];
  return { rows, writes: [`${o.suggestions}, at each answer`] };
}

/** The image files named and the folders' images, listed, each there. */
function imageFiles(positionals: string[], folders: string[] | undefined): string[] {
  checkImageFiles(positionals);
  return [...positionals, ...folderImages(folders)];
}

async function planEmbed(input: DryInput): Promise<DryPlan> {
  const o = valuesOf<'embed'>(input);
  const out = requireEmbedOut(o.out);
  const files = imageFiles(input.positionals, o.unlabeled);
  checkEmbedPlan({ run: o.model ?? '', files, stage: o.stage });
  const encoder = o.stage === 'pretrain' ? 'the pretrained encoder' : `${o.stage}'s tuned encoder`;
  const rows: Row[] = [['run folder', checkRun(o.model ?? '').text], ['images', counted(files.length, 'image file')]];
  return { rows, stages: [`embed them with ${encoder}, streamed`], computes: true, writes: [`${out} (${/\.csv$/i.test(out) ? 'CSV: path and one column a dimension' : "safetensors: 'embeddings' and the paths"})`] };
}

async function planPredict(input: DryInput): Promise<DryPlan> {
  const o = valuesOf<'predict'>(input);
  const files = imageFiles(input.positionals, o.unlabeled);
  const { stage } = checkPredictPlan({ run: o.model ?? '', files, stage: o.stage });
  const rows: Row[] = [['run folder', checkRun(o.model ?? '').text], ['images', counted(files.length, 'image file')]];
  const shown = o.out ? [`${o.out} (path, class, probability, the top ${o.top})`] : [];
  return { rows, stages: [`classify them with ${stage}, streamed: the top ${o.top} per image${o.out ? '' : o.json ? ', printed as JSON' : ', printed'}`], computes: true, writes: shown };
}

async function planExport(input: DryInput): Promise<DryPlan> {
  const o = valuesOf<'export'>(input);
  const { model, out } = checkExportOptions(o);
  const { run, text } = checkRun(model);
  let stage = o.stage ?? '';
  if (stage === 'pretrain') checkPretrained(run);
  else stage = classifierStage(run, model, o.stage);
  return { rows: [['run folder', text], ['format', `${o.format}${o.format === 'onnx' ? `, ${o.input} input` : ''}`]], stages: [`export ${stage}`], computes: true, writes: [out] };
}

async function planServe(input: DryInput): Promise<DryPlan> {
  const o = valuesOf<'serve'>(input);
  const model = requireServeModel(o.model);
  const { run, text } = checkRun(model);
  const stage = classifierStage(run, model, o.stage);
  const rows: Row[] = [['run folder', text], ['server', `http://${o.host}:${o.port}/ (nothing listens in a dry run): the top ${o.top}, images up to ${o.maxBytes} bytes, batches of up to ${o.maxBatch}`]];
  return { rows, stages: [`load ${stage}, then answer POST /predict, GET / and GET /healthz until Ctrl-C`], computes: true };
}

async function planReport(input: DryInput): Promise<DryPlan> {
  const o = valuesOf<'report'>(input);
  const model = requireReportModel(o.model);
  const { run, config, text } = checkRun(model);
  const stage = reportStage(run, model, o.stage);
  const rows: Row[] = [['run folder', text], ['test set', await checkRunTestSet(config)]];
  const steps = [`${stage} on the test set: confusion matrix, per-class accuracy, the ${o.mistakes} most confident mistakes`, 'SimCLR views of a few images', `a UMAP map of the encoder's embeddings of ${o.mapImages} test images (seed ${o.seed})`];
  return { rows, stages: steps, computes: true, writes: [o.out ?? `${model}/report.html and report-analysis.json`] };
}

async function planData(input: DryInput): Promise<DryPlan> {
  const o = valuesOf<'data'>(input);
  requireSpec(o.data);
  const found = await checkSpec(o.data, o.split);
  if (o.labels) {
    parseLabels(o.labels);
    checkLabelsOption(found.labeled || null, o.data);
  }
  const cache = found.folder ? [`the decoded images, the first time, to the cache in ${defaultCacheDir()}`] : [];
  return { rows: [['data', found.text]], writes: [...cache, ...(o.labels ? [`${o.out} (${o.labels} of the labels, seed ${o.seed})`] : [])] };
}

async function planViews(input: DryInput): Promise<DryPlan> {
  const o = valuesOf<'views'>(input);
  requireViewsFolder(o.data);
  const dir = o.data;
  let images: number;
  try {
    images = listImages(dir).files.length;
  } catch (e) {
    throw inputError(e);
  }
  const rows: Row[] = [['images', `${dir}: ${counted(images, 'image')}; ${Math.min(o.count, images)} drawn (seed ${o.seed})`]];
  return { rows, stages: ['each drawn image beside two SimCLR views of it'], computes: true, writes: [o.out] };
}

async function planInfo(): Promise<DryPlan> {
  return { rows: [['prints', "libtorch's version and build, threads, devices, and the precision, layout, BLAS kernels and allocator chosen"]], computes: true };
}

export const USE_PLANS = {
  info: planInfo,
  data: planData,
  views: planViews,
  eval: planEval,
  'suggest-labels': planSuggest,
  label: planLabel,
  embed: planEmbed,
  predict: planPredict,
  export: planExport,
  serve: planServe,
  report: planReport,
} satisfies Record<string, Planner>;
