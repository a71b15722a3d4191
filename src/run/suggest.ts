// suggest-labels: embeds the run's unlabeled images with its pretrained encoder and chooses
// which to label (src/select), writing a CSV to fill in and a contact sheet of the images.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openInputs, readLabelCsv, squareFrames, writeLabelCsv, type DataInputs, type InputsDataset, type LabelRow } from '../data';
import { encode, classifierPredictions } from '../train';
import { selectToLabel, type Choice, type Strategy } from '../select';
import { asPlanError, isBuiltInSpec } from './data';
import { PlanError } from './errors';
import { checkPretrained, defaultClassifierStage, loadClassifier, openRun, pretrainedModel, stageArch, type RunConfig } from './folder';
import type { RunFolder } from '../train';
import { contactSheet } from './contact-sheet';

export interface SuggestPlan {
  /** the run folder (its pretrained encoder) */
  run: string;
  count: number;
  strategy: Strategy;
  /** the CSV to write */
  out: string;
  seed: number;
  /** the images to choose among (default: the run's) */
  unlabeled?: string[];
  /** images already labeled (default: the run's labeled set, if any): they cover their clusters */
  labeled?: string;
  /** uncertain: the classifier stage (default: distill-*, else finetune-*) */
  stage?: string;
  /** the contact sheet PNG (default: the CSV's name with .png; null: none) */
  sheet?: string | null;
  skipBadImages?: boolean;
}

export interface Suggestion {
  file: string;
  sheet: string | null;
  choices: (Choice & { path: string })[];
  candidates: number;
  labeled: number;
  seconds: { embed: number; select: number };
}

/** The images a run chooses among: --unlabeled, else the run's own folders (never a built-in data set's). */
function poolOf(config: RunConfig, plan: SuggestPlan): { unlabeled: string[]; labeled: string | null } {
  const unlabeled = plan.unlabeled?.length ? plan.unlabeled : config.inputs?.unlabeled ?? (isBuiltInSpec(config.data) ? null : [config.data]);
  if (!unlabeled) throw new PlanError(`${config.data} is not a folder of image files: give --unlabeled DIR, the images to choose among`);
  return { unlabeled, labeled: plan.labeled ?? config.inputs?.labeled ?? null };
}

/** A CSV with labels in it (a filled-in round) is never written over. */
function refuseFilledCsv(out: string, labeled: string | null): void {
  if (labeled && resolve(labeled) === resolve(out)) throw new PlanError(`--out ${out} is the labeled set itself: write the next round to another file (e.g. to-label-2.csv)`);
  if (!existsSync(out)) return;
  let filled = 0;
  try {
    filled = readLabelCsv(out).images.length;
  } catch {
    filled = 0; // empty, unlabeled or not a label file: nothing to lose
  }
  if (filled) throw new PlanError(`${out} holds ${filled} labels already: write the suggestions to another --out (e.g. to-label-2.csv), and pass --labeled ${out} so that they count as covered`);
}

/**
 * The plan's run, the images to choose among, the CSV it would write and the classifier an
 * uncertain round asks, checked before any image is read (and by --dry-run).
 */
export function checkSuggestPlan(plan: SuggestPlan): { run: RunFolder; config: RunConfig; inputs: DataInputs; stage?: string } {
  const { run, config } = openRun(plan.run);
  const inputs = poolOf(config, plan);
  refuseFilledCsv(plan.out, inputs.labeled);
  if (!(plan.count >= 1)) throw new PlanError(`--count must be at least 1, got ${plan.count}`);
  checkPretrained(run);
  if (plan.strategy !== 'uncertain') return { run, config, inputs };
  const stage = plan.stage ?? defaultClassifierStage(run);
  if (!stage) throw new PlanError(`${plan.run}: --strategy uncertain needs a trained classifier (simclr finetune --from ${plan.run} --labeled FILE.csv first)`);
  stageArch(run, stage);
  return { run, config, inputs, stage };
}

export async function suggestLabels(plan: SuggestPlan): Promise<Suggestion> {
  const { run, config, inputs, stage } = checkSuggestPlan(plan);
  const ds: InputsDataset = await asPlanError(() => openInputs(inputs, { imageSize: config.imageSize, channels: config.channels, skipBad: plan.skipBadImages || config.skipBadImages }));
  const labeled = new Set(ds.labeledIndices);
  const started = performance.now();
  const model = pretrainedModel(run, config);
  const features = encode(model, ds, config.norm, { unit: true });
  model.dispose();
  let confidence: Float32Array | undefined;
  if (stage) {
    const { model: classifier } = loadClassifier(run, stage);
    confidence = classifierPredictions(classifier, ds, config.norm).probability;
    classifier.dispose();
  }
  const embedded = performance.now();
  let choices: Choice[];
  try {
    choices = selectToLabel({ features, labeled, count: plan.count, strategy: plan.strategy, seed: plan.seed, confidence });
  } catch (e) {
    if (e instanceof RangeError) throw new PlanError(e.message);
    throw e;
  } finally {
    features.dispose();
  }
  const selected = performance.now();
  const rows: LabelRow[] = choices.map((c) => ({ file: join(ds.root, ds.ids[c.index]!), label: '', extra: extraColumns(c) }));
  writeLabelCsv(plan.out, rows);
  const sheet = plan.sheet === null ? null : plan.sheet ?? plan.out.replace(/(\.csv)?$/i, '.png');
  // The sheet shows the first SHEET_MAX images: a person reads no more at once, and memory stays bounded.
  const shown = choices.slice(0, SHEET_MAX);
  if (sheet) await contactSheet(sheet, squareFrames(ds, shown.map((c) => c.index)), shown.length, ds.channels, ds.size);
  ds.stored?.close();
  return {
    file: plan.out,
    sheet,
    choices: choices.map((c, i) => ({ ...c, path: rows[i]!.file })),
    candidates: ds.count - labeled.size,
    labeled: labeled.size,
    seconds: { embed: (embedded - started) / 1000, select: (selected - embedded) / 1000 },
  };
}

const SHEET_MAX = 500;

function extraColumns(c: Choice): Record<string, string | number> {
  return {
    cluster: c.cluster ?? '',
    typicality: c.typicality !== undefined ? Number(c.typicality.toFixed(4)) : '',
    confidence: c.confidence !== undefined ? Number(c.confidence.toFixed(4)) : '',
    why: c.why,
  };
}
