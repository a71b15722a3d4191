// Which images a run's stages read: the one place that decides the training images (a data
// set spec, or the user's unlabeled folders and labeled set), the labeled subset of a user's
// labels, their validation split, and the test set.
import { basename, extname } from 'node:path';
import { LabelFileError, labelCounts, openDataset, openInputs, parseClassList, validationSplit, type DataInputs, type ImageDataset, type InputsDataset } from '../data';
import type { RunConfig } from './folder';
import { PlanError } from './errors';

const BUILT_IN = /^(fashion-mnist|mnist|cifar10-bin|cifar100-bin)(:|$)/;

/** fashion-mnist, mnist:DIR, cifar10-bin:DIR, ...: sources with their own test split. */
export const isBuiltInSpec = (spec: string): boolean => BUILT_IN.test(spec);

/** A label file's or folder's name as a stage tag: finetune-<tag> ('to-label.csv' -> 'to-label'). */
export function labelSetTag(source: string): string {
  const name = basename(source.replace(/[\\/]+$/, ''), extname(source)) || 'labeled';
  return name.replace(/[^A-Za-z0-9.-]/g, '_');
}

/** Errors in the user's label files, as the command-line errors they are. */
export async function asPlanError<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof LabelFileError) throw new PlanError(e.message);
    throw e;
  }
}

/**
 * The user's inputs for a stage: the run's unlabeled folders with the stage's labeled set
 * (else the run's). A run made from one image folder (--data DIR) takes a labeled set too,
 * its folder then being the unlabeled pool.
 */
export function runInputs(config: RunConfig, labeled?: string): DataInputs | null {
  if (config.inputs) return { unlabeled: config.inputs.unlabeled, labeled: labeled ?? config.inputs.labeled };
  if (!labeled) return null;
  if (isBuiltInSpec(config.data)) throw new PlanError(`--labeled takes the labels of image files; the run reads ${config.data}: use --labels or --labels-file there`);
  return { unlabeled: [config.data], labeled };
}

/** The user's inputs a data plan names (--unlabeled, --labeled), or null when it names a data set spec instead. */
export function userInputsOf(d: { unlabeled?: string[]; labeled?: string } | undefined): DataInputs | null {
  return d && (d.unlabeled?.length || d.labeled) ? { unlabeled: d.unlabeled ?? [], labeled: d.labeled ?? null } : null;
}

const shape = (config: RunConfig) => ({ imageSize: config.imageSize, channels: config.channels });

/** The run's training images (with a stage's labeled set, where given), read as the run was made. */
export async function openTrainImages(config: RunConfig, o: { skipBad?: boolean; labeled?: string; classes?: string } = {}): Promise<ImageDataset | InputsDataset> {
  const skipBad = o.skipBad || config.skipBadImages;
  const source = await asPlanError(async () => trainSourceOf(config, o));
  if ('spec' in source) return openDataset(source.spec, { ...shape(config), split: 'train', skipBad });
  return asPlanError(async () => openInputs(source.inputs, { ...shape(config), skipBad, ...source.classes }));
}

/** Where a stage's training images come from: the user's inputs and the classes they are read against, or the run's data set. */
export function trainSourceOf(config: RunConfig, o: { labeled?: string; classes?: string }): { inputs: DataInputs; classes: { classes?: string[]; anyClasses?: boolean } } | { spec: string } {
  const inputs = runInputs(config, o.labeled);
  if (inputs) return { inputs, classes: runClasses(config, o.classes) };
  if (o.classes) throw new PlanError('--classes goes with --labeled (your labeled images)');
  return { spec: config.data };
}

/**
 * The classes a labeled set is read against: --classes (some may have no label yet), else
 * the run's (each must have one), else the set's own.
 */
function runClasses(config: RunConfig, given: string | undefined): { classes?: string[]; anyClasses?: boolean } {
  if (!given) return config.classes.length ? { classes: config.classes } : {};
  const classes = parseClassList(given);
  if (config.classes.length && JSON.stringify(classes) !== JSON.stringify(config.classes)) {
    throw new LabelFileError(`--classes ${given} gives ${classes.join(', ')}; the run's classes are ${config.classes.join(', ')}`);
  }
  return { classes, anyClasses: true };
}

/** The test set: --test-data (a labeled folder or CSV, its labels read as the run's classes), or the source's own test split. */
export async function openTestImages(config: RunConfig, override?: string, skipBad?: boolean): Promise<ImageDataset> {
  const test = testSetOf(config, override);
  const o = { ...shape(config), split: 'test' as const, skipBad: skipBad || config.skipBadImages };
  if (test.labeled) return asPlanError(() => openInputs({ unlabeled: [], labeled: test.spec }, { ...o, classes: config.classes, anyClasses: true }));
  return openDataset(test.spec, o);
}

/** Where a run's test set is read from: --test-data (a labeled folder or CSV, read as labels), the run's, or its source's test split. */
export function testSetOf(config: Pick<RunConfig, 'data' | 'testData' | 'inputs'>, override?: string): { spec: string; labeled: boolean } {
  const spec = override || config.testData;
  if (spec) return { spec, labeled: Boolean(config.inputs) || /\.csv$/i.test(spec) };
  if (isBuiltInSpec(config.data)) return { spec: config.data, labeled: false };
  throw new PlanError(`${config.inputs ? 'the run' : config.data} has no test split: pass --test-data (a labeled folder or CSV)`);
}

/** Fewer labels than this in some class: no validation split unless --val asks for one. */
export const MIN_LABELS_FOR_VALIDATION = 5;

/**
 * A user's labeled images split into training labels and validation: by default none is
 * held out when a class has under 5 labels (the reason is returned); --val forces a split.
 */
export function splitUserLabels(ds: InputsDataset, val: string | undefined, defaultVal: string, seed: number): { train: number[]; val: number[]; noValidation?: string } {
  const labeled = ds.labeledIndices;
  const fewest = Math.min(...labelCounts(ds, labeled));
  if (val === undefined && fewest < MIN_LABELS_FOR_VALIDATION) {
    return { train: labeled, val: [], noValidation: `a class has ${fewest} label${fewest === 1 ? '' : 's'}, under ${MIN_LABELS_FOR_VALIDATION}: no validation split is held out (--val N forces one)` };
  }
  let picked: number[];
  try {
    picked = validationSplit(Int32Array.from(labeled, (i) => ds.labels![i]!), val ?? defaultVal, seed);
  } catch (e) {
    throw new PlanError((e as Error).message);
  }
  const held = new Set(picked.map((k) => labeled[k]!));
  return { train: labeled.filter((i) => !held.has(i)), val: [...held].sort((a, b) => a - b), ...(held.size ? {} : { noValidation: '--val 0: no validation split' }) };
}

export function isInputsDataset(ds: ImageDataset): ds is InputsDataset {
  return Array.isArray((ds as InputsDataset).labeledIndices);
}

/** A new run's test set, before its config exists: --test-data, else a built-in set's own test split; null when there is none. */
export async function openTestImagesFor(d: { spec?: string; test?: string; unlabeled?: string[]; labeled?: string }, train: ImageDataset, skipBad?: boolean): Promise<ImageDataset | null> {
  const o = { imageSize: train.size, channels: train.channels, split: 'test' as const, skipBad };
  const user = userInputsOf(d) !== null;
  // A pool without labels yet has no classes: the test set's own are taken.
  const classes = train.classes.length ? { classes: train.classes, anyClasses: true } : {};
  if (d.test && (user || /\.csv$/i.test(d.test))) return asPlanError(() => openInputs({ unlabeled: [], labeled: d.test! }, { ...o, ...classes }));
  if (d.test) return openDataset(d.test, o);
  if (d.spec && isBuiltInSpec(d.spec)) return openDataset(d.spec, o);
  return null;
}
