// The demo's labels, as a user would get them: suggest-labels chooses which pool images to
// label with the pretrained encoder, and the simulated annotator fills in their labels in
// the CSV (the only place the demo reads a hidden label). Besides, the demo draws images the
// user would not have labels for: a held-back validation set, marked as such wherever it is
// reported, and a random draw of the same size as the suggestion, for the baseline on
// random labels.
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { annotate, listImagesDeep, readLabelCsv, seededRandom, shuffleInPlace, writeLabelCsv, writeSubsetFile, type LabeledImage } from '../../data';
import { suggestLabels } from '../suggest';
import { openRun } from '../folder';
import { openTrainImages } from '../data';
import { PlanError } from '../errors';

export interface DemoLabels {
  /** the suggested labels with the held-back ones (a --labeled CSV) */
  suggested: string;
  /** as many random labels with the same held-back ones */
  random: string;
  /** the held-back images' ids (a --val-file) */
  heldBack: string;
  /** how many labels the stages train on */
  count: number;
}

export interface DemoLabelPlan {
  run: string;
  /** the unlabeled pool */
  pool: string;
  count: number;
  heldBack: number;
  seed: number;
}

const files = (run: string): DemoLabels & { toLabel: string } => ({
  toLabel: join(run, 'to-label.csv'),
  suggested: join(run, 'suggested.csv'),
  random: join(run, 'random.csv'),
  heldBack: join(run, 'held-back.txt'),
  count: 0,
});

/** A CSV of these images with empty labels, filled in by the simulated annotator; its rows back. */
function annotated(csv: string, images: readonly string[]): LabeledImage[] {
  writeLabelCsv(csv, images.map((file) => ({ file, label: '' })));
  annotate(csv);
  return readLabelCsv(csv).images;
}

/** Chooses (or, when chosen already, finds) the demo's label files in the run folder. */
export async function chooseDemoLabels(p: DemoLabelPlan): Promise<DemoLabels> {
  const f = files(p.run);
  // held-back.txt is written last: when it is there, every file is.
  if (existsSync(f.heldBack)) return { ...f, count: readLabelCsv(f.toLabel).images.length };
  if (!existsSync(f.toLabel) || readLabelCsv(f.toLabel).images.length === 0) {
    const s = await suggestLabels({ run: p.run, count: p.count, strategy: 'typical', out: f.toLabel, seed: p.seed });
    console.log(`suggest-labels: ${s.choices.length} of ${s.candidates} images to label (embedding ${s.seconds.embed.toFixed(1)} s, choosing ${s.seconds.select.toFixed(1)} s); contact sheet ${s.sheet}`);
    annotate(f.toLabel);
  }
  const suggested = readLabelCsv(f.toLabel).images;
  if (suggested.length !== p.count) throw new PlanError(`${f.toLabel}: ${suggested.length} labeled rows, expected ${p.count}`);
  // The held-back and random images come from the rest of the pool, in a seeded order.
  const taken = new Set(suggested.map((i) => i.file));
  const rest = shuffleInPlace(listImagesDeep(p.pool).files.filter((x) => !taken.has(x)), seededRandom(p.seed + 7919));
  if (rest.length < p.heldBack + p.count) throw new PlanError(`${p.pool}: ${rest.length} images besides the suggested ones; the demo needs ${p.heldBack + p.count}`);
  const heldBack = annotated(join(p.run, 'held-back.csv'), rest.slice(0, p.heldBack));
  const random = annotated(join(p.run, 'random-draw.csv'), rest.slice(p.heldBack, p.heldBack + p.count));
  const rows = (images: readonly LabeledImage[]) => images.map((i) => ({ file: i.file, label: i.label }));
  writeLabelCsv(f.suggested, rows([...suggested, ...heldBack]));
  writeLabelCsv(f.random, rows([...random, ...heldBack]));
  // The held-back images by their ids in the run's data set, as --val-file reads them.
  const { config } = openRun(p.run);
  const ds = await openTrainImages(config, { labeled: f.suggested });
  const index = new Map(ds.ids.map((id, i) => [id, i]));
  const root = (ds as { root?: string }).root ?? p.pool;
  const ids = heldBack.map((i) => index.get(relative(root, i.file)));
  ds.stored?.close();
  if (ids.some((i) => i === undefined)) throw new PlanError(`${p.run}: a held-back image is not among the run's images`);
  writeSubsetFile(f.heldBack, ds, ids as number[]);
  return { ...f, count: suggested.length };
}

