// What the report needs a model for, computed once when it is written: the chosen
// classifier on the test set (confusion matrix, the most confident mistakes with their
// images), SimCLR views of a few images, and a 2-D map of the pretrained encoder's
// embeddings of a sample of test images. Saved beside the report (report-analysis.json), so
// that the report rewritten after a later stage keeps it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as t from '../torch';
import { viewsGridOf } from '../augment';
import { imageBatch, pngBytes, seededRandom, shuffleInPlace, squareFrames, type ImageDataset } from '../data';
import { classifierPredictions, encode, hasCheckpoint, type RunFolder } from '../train';
import { PlanError } from '../run/errors';
import { defaultClassifierStage, listStages, loadClassifier, openRun, pretrainedModel, testData, type RunConfig } from '../run/folder';
import { umap2d } from './map';

export const ANALYSIS_FILE = 'report-analysis.json';

export interface Mistake {
  id: string;
  truth: number;
  predicted: number;
  probability: number;
  /** the image as a PNG data URI */
  image: string;
}

export interface ReportAnalysis {
  written: string;
  /** the classifier analysed, and when its checkpoint was saved (ms), to tell a stale analysis */
  stage: string;
  stageSaved: number;
  testImages: number;
  classes: string[];
  /** counts [true class][predicted class] on the test set */
  confusion: number[][];
  mistakes: Mistake[];
  /** original | view 1 | view 2 per row, with the run's pretraining augmentations, as a PNG data URI */
  views: { image: string; rows: number } | null;
  map: { points: { x: number; y: number; label: number; id: string }[]; encoder: string; seed: number } | { skipped: string };
  seconds: { classifier: number; views: number; map: number };
}

export interface AnalysisOptions {
  run: string;
  /** default: distill-*, else finetune-* (the classifier predict and export use) */
  stage?: string;
  /** test images placed on the map (a seeded sample; default 2,000) */
  mapImages?: number;
  /** mistakes shown (default 24) */
  mistakes?: number;
  /** rows of the views grid (default 6) */
  viewRows?: number;
  seed?: number;
  skipBadImages?: boolean;
}

/** Pixels of the chosen images at size x size (centre squares of stored images), data set order kept. */
function gather(ds: ImageDataset, indices: readonly number[]): Uint8Array {
  return squareFrames(ds, indices);
}

/** The data set restricted to some of its images. */
function subset(ds: ImageDataset, indices: readonly number[]): ImageDataset {
  return { ...ds, pixels: gather(ds, indices), stored: undefined, count: indices.length, labels: ds.labels ? Int32Array.from(indices, (i) => ds.labels![i]!) : null, ids: indices.map((i) => ds.ids[i]!) };
}

const seconds = (since: number): number => Math.round((performance.now() - since) / 100) / 10;

/** A seeded sample of `n` image indices, in data set order. */
function sample(count: number, n: number, seed: number): number[] {
  const all = Array.from({ length: count }, (_, i) => i);
  return shuffleInPlace(all, seededRandom(seed)).slice(0, Math.min(n, count)).sort((a, b) => a - b);
}

/** On-screen size of a gallery image: small images zoomed by whole pixels to about 96px. */
const displaySide = (size: number): number => (size < 96 ? Math.max(1, Math.round(96 / size)) * size : 128);

async function dataUri(ds: ImageDataset, index: number): Promise<string> {
  const png = await pngBytes(gather(ds, [index]), ds.channels, ds.size, ds.size, displaySide(ds.size));
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** The classifier the report shows: --stage (trained in the run), else distill-*, else finetune-* (also --dry-run's). */
export function reportStage(run: RunFolder, dir: string, given?: string): string {
  const stage = given || defaultClassifierStage(run);
  if (!stage) throw new PlanError(`${dir}: no trained classifier to report on (run simclr finetune --from ${dir} first)`);
  if (!listStages(run).includes(stage)) throw new PlanError(`${dir}: no '${stage}' checkpoint (stages there: ${listStages(run).join(', ') || 'none'})`);
  return stage;
}

export async function analyseRun(o: AnalysisOptions): Promise<ReportAnalysis> {
  const { run, config } = openRun(o.run);
  const stage = reportStage(run, o.run, o.stage);
  const seed = o.seed ?? 0;
  const test = await testData(config, undefined, o.skipBadImages);
  if (!test.labels) throw new PlanError(`${test.source}: the test set has no labels (no class subfolders), so there is nothing to compare predictions with`);

  let started = performance.now();
  const { confusion, mistakes } = await classifierOnTest(run, config, stage, test, o.mistakes ?? 24);
  const classifierSeconds = seconds(started);

  started = performance.now();
  t.manualSeed(seed);
  const rows = Math.min(o.viewRows ?? 6, test.count);
  const picked = sample(test.count, rows, seed + 1);
  // As training reads them: stored images are cropped at their stored size.
  const grid = t.tidy(() => {
    const { images, extents } = imageBatch(test, picked);
    return viewsGridOf(images, test.size, config.pretrain.views, test.size <= 64 ? 3 : 1, extents);
  });
  const views = { image: `data:image/png;base64,${(await pngBytes(grid.chw, grid.channels, grid.height, grid.width)).toString('base64')}`, rows: picked.length };
  const viewsSeconds = seconds(started);

  started = performance.now();
  const map = embeddingMap(run, config, test, o.mapImages ?? 2000, seed);
  return {
    written: new Date().toISOString(),
    stage,
    stageSaved: statSync(run.path(`${stage}.safetensors`)).mtimeMs,
    testImages: test.count,
    classes: config.classes,
    confusion,
    mistakes,
    views,
    map,
    seconds: { classifier: classifierSeconds, views: viewsSeconds, map: seconds(started) },
  };
}

async function classifierOnTest(run: RunFolder, config: RunConfig, stage: string, test: ImageDataset, show: number): Promise<{ confusion: number[][]; mistakes: Mistake[] }> {
  const { model } = loadClassifier(run, stage);
  let predictions;
  try {
    predictions = classifierPredictions(model, test, config.norm);
  } finally {
    model.dispose();
  }
  const { predicted, probability } = predictions;
  const classes = config.classes.length;
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  const wrong: number[] = [];
  for (let i = 0; i < test.count; i++) {
    const truth = test.labels![i]!;
    if (truth < classes && predicted[i]! < classes) confusion[truth]![predicted[i]!]! += 1;
    if (truth !== predicted[i]) wrong.push(i);
  }
  wrong.sort((a, b) => probability[b]! - probability[a]! || a - b);
  const mistakes: Mistake[] = [];
  for (const i of wrong.slice(0, show)) {
    mistakes.push({ id: test.ids[i]!, truth: test.labels![i]!, predicted: predicted[i]!, probability: Math.round(probability[i]! * 10000) / 10000, image: await dataUri(test, i) });
  }
  return { confusion, mistakes };
}

function embeddingMap(run: RunFolder, config: RunConfig, test: ImageDataset, n: number, seed: number): ReportAnalysis['map'] {
  if (!hasCheckpoint(run, 'pretrain')) return { skipped: 'the run has no pretrained encoder (pretrain.safetensors)' };
  if (test.count < 3) return { skipped: `the test set has ${test.count} images: too few for a map` };
  const chosen = sample(test.count, n, seed);
  const part = subset(test, chosen);
  const model = pretrainedModel(run, config);
  let features: Float64Array | number[];
  let dim: number;
  try {
    const f = encode(model, part, config.norm);
    dim = f.shape[1]!;
    features = f.toArray();
    f.dispose();
  } finally {
    model.dispose();
  }
  const xy = umap2d(features, part.count, dim, { seed });
  return { points: xy.map(([x, y], k) => ({ x, y, label: part.labels![k]!, id: part.ids[k]! })), encoder: 'pretrain', seed };
}

/** The analysis saved in a run folder, or null (none yet, or unreadable). */
export function readAnalysis(run: RunFolder): ReportAnalysis | null {
  const file = run.path(ANALYSIS_FILE);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ReportAnalysis;
  } catch {
    return null;
  }
}

/** Why a saved analysis no longer describes the run (its classifier was retrained or another is now the default), or null. */
export function staleness(run: RunFolder, a: ReportAnalysis): string | null {
  const file = run.path(`${a.stage}.safetensors`);
  if (!existsSync(file)) return `${a.stage} is no longer in the run folder`;
  if (Math.abs(statSync(file).mtimeMs - a.stageSaved) > 1) return `${a.stage} was trained again after this analysis`;
  const now = defaultClassifierStage(run);
  if (now && now !== a.stage && !now.startsWith(a.stage.split('-')[0]!)) return `the run's default classifier is now ${now}`;
  return null;
}
