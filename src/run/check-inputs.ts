// What --dry-run reads of a command's inputs, and no more: image folders listed (never
// decoded), a data set's files found, label files read with their images' paths checked,
// run folders' config and checkpoints, weights files' headers. Each check gives a few words
// for the plan; a problem is a PlanError (exit 2) naming the path.
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { findSpec, listInputs, type DataInputs, type InputsOptions } from '../data';
import { weightsFileSummary } from '../models/pretrained';
import { PlanError } from './errors';
import { isBuiltInSpec, testSetOf, trainSourceOf, userInputsOf } from './data';
import { listStages, openRun, type RunConfig } from './folder';
import type { DataPlan } from './stages/types';
import { hasCheckpoint, PRETRAIN_CHECKPOINT, type RunFolder } from '../train';

/** Any error of a check as the command-line error it is (exit 2): the input named is wrong. */
export function inputError(e: unknown): PlanError {
  return e instanceof PlanError ? e : new PlanError((e as Error).message);
}

async function planned<T>(check: () => T | Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (e) {
    throw inputError(e);
  }
}

export const counted = (n: number, what: string, plural = `${what}s`): string => `${n.toLocaleString('en-US')} ${n === 1 ? what : plural}`;

function classList(classes: readonly string[]): string {
  const shown = classes.slice(0, 8).join(', ');
  return `${counted(classes.length, 'class', 'classes')} (${shown}${classes.length > 8 ? ', ...' : ''})`;
}

/** What a check of images found: a few words, whether they are labeled, how many (where known without reading them), an image folder's. */
export interface FoundImages {
  text: string;
  labeled: boolean;
  count?: number;
  folder?: boolean;
}

/** A data set spec: an image folder listed, or a data set's files found. */
export async function checkSpec(spec: string, split: 'train' | 'test' = 'train'): Promise<FoundImages> {
  const found = await planned(() => findSpec(spec, split));
  if (found.list) {
    const labeled = found.list.classes.length > 0;
    return { text: `${spec}: ${counted(found.files.length, 'image')}, ${labeled ? classList(found.list.classes) : 'no class subfolders (unlabeled)'}`, labeled, count: found.files.length, folder: true };
  }
  const images = found.count !== undefined ? `${counted(found.count, 'image')}, ` : '';
  return { text: `${spec}: ${images}${split} split in ${dirname(found.files[0]!)}`, labeled: true, ...(found.count !== undefined ? { count: found.count } : {}) };
}

/** The user's folders listed and labeled set read (its images' paths checked), against the classes given. */
export async function checkInputs(inputs: DataInputs, o: Pick<InputsOptions, 'classes' | 'anyClasses'> = {}): Promise<FoundImages> {
  const listed = await planned(() => listInputs(inputs, o));
  const parts = inputs.unlabeled.length ? [`--unlabeled ${inputs.unlabeled.join(', ')}: ${counted(listed.pool.length, 'image')}`] : [];
  if (listed.set) {
    const waiting = listed.set.unlabeledRows ? ` (${counted(listed.set.unlabeledRows, 'row')} still without a label)` : '';
    parts.push(`--labeled ${inputs.labeled}: ${counted(listed.set.images.length, 'labeled image')}, ${classList(listed.classes)}${waiting}`);
  }
  // Labeled images outside the folders add to them (one found under another path is counted twice here).
  const pool = new Set(listed.pool.map((f) => resolve(f)));
  const outside = listed.set ? listed.set.images.filter((i) => !pool.has(i.file)).length : 0;
  return { text: parts.join('; '), labeled: Boolean(listed.set), count: pool.size + outside };
}

/** A new run's images: a spec, or the user's folders and labels. */
export function checkDataPlan(d: Partial<DataPlan> | undefined): Promise<FoundImages> {
  const inputs = userInputsOf(d);
  return inputs ? checkInputs(inputs) : checkSpec(d?.spec ?? '');
}

/** A test set: a labeled folder or CSV read as labels, or a data set's test split. */
async function checkTest(spec: string, asLabels: boolean): Promise<string> {
  if (asLabels) return (await checkInputs({ unlabeled: [], labeled: spec }, { anyClasses: true })).text.replace(/^--labeled /, '');
  return (await checkSpec(spec, 'test')).text;
}

/** A new run's test set (--test-data, else a built-in set's own split), or null when it has none. */
export async function checkNewTestSet(d: Partial<DataPlan> | undefined): Promise<string | null> {
  if (d?.test) return checkTest(d.test, userInputsOf(d) !== null || /\.csv$/i.test(d.test));
  if (d?.spec && isBuiltInSpec(d.spec)) return checkTest(d.spec, false);
  return null;
}

/** A run's test set: --test-data, the run's, or its source's test split (none is a PlanError, as the commands say). */
export async function checkRunTestSet(config: RunConfig, override?: string): Promise<string> {
  const test = testSetOf(config, override);
  return checkTest(test.spec, test.labeled);
}

/** A classifier stage's test set, or null where the run has none (the stage then reports validation only). */
export async function checkStageTestSet(config: RunConfig): Promise<string | null> {
  let test;
  try {
    test = testSetOf(config);
  } catch {
    return null;
  }
  return checkTest(test.spec, test.labeled);
}

/** A stage's training images: the user's inputs against the run's classes, or the run's data set. */
export async function checkTrainImages(config: RunConfig, o: { labeled?: string; classes?: string }): Promise<{ text: string; inputs: boolean }> {
  const source = await planned(() => trainSourceOf(config, o));
  if ('spec' in source) return { text: (await checkSpec(source.spec)).text, inputs: false };
  return { text: (await checkInputs(source.inputs, source.classes)).text, inputs: true };
}

/** Image files named on the command line: each there and a file. */
export function checkImageFiles(files: readonly string[]): void {
  for (const f of files) {
    let file = false;
    try {
      file = statSync(f).isFile();
    } catch (e) {
      throw new PlanError(`${f}: cannot read the image (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (!file) throw new PlanError(`${f}: not an image file (a folder goes with --unlabeled)`);
  }
}

/** A run folder: its config read and what it was made from, its stages listed. */
export function checkRun(dir: string): { run: RunFolder; config: RunConfig; text: string } {
  const { run, config } = openRun(dir);
  const from = config.inputs ? [`--unlabeled ${config.inputs.unlabeled.join(', ')}`, ...(config.inputs.labeled ? [`--labeled ${config.inputs.labeled}`] : [])].join(' ') : config.data;
  const e = config.pretrain.encoder;
  const stages = [...(hasCheckpoint(run, PRETRAIN_CHECKPOINT) ? ['pretrain'] : []), ...listStages(run)];
  const text = `${dir}: made from ${from}; ResNet-${e.depth}, width ${e.width}${e.skRatio ? ', SK' : ''}, ${config.imageSize}px ${config.channels === 1 ? 'gray' : 'RGB'}; stages: ${stages.join(', ') || 'none yet'}`;
  return { run, config, text };
}

/** A list of image ids (--labels-file, --val-file): read, its lines counted. */
export function checkIdFile(file: string, flag: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new PlanError(`${flag} ${file}: cannot read the list of image ids (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return `${flag} ${file}: ${counted(text.split('\n').filter((l) => l.trim()).length, 'image id')}`;
}

/** A weights file: its format recognised and its tensors counted from the header, none read. */
export async function checkWeights(file: string): Promise<string> {
  const s = await planned(() => weightsFileSummary(file));
  return `${file}: ${s.format}, ${counted(s.tensors, 'tensor')} (the architecture they hold is read when the command runs)`;
}
