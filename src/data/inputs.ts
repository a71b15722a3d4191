// The user's own inputs: folders of unlabeled images (flat or nested; class folders in them
// are not read as labels) and a labeled set (class folders or a CSV). They are read as one
// data set: every image once, labeled images found in the unlabeled folders (the same file,
// or the same bytes) carrying their label there, the others added.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { IMAGE_EXTENSIONS, loadImageFiles, type FolderRead, type ImageFolderOptions } from './image-folder';
import type { ImageDataset } from './dataset';
import { LabelFileError, readLabels, type LabelSet } from './labels';

/** Where a run's images come from. */
export interface DataInputs {
  /** folders of unlabeled images (pretraining and distillation read them) */
  unlabeled: string[];
  /** a labeled folder or CSV (fine-tuning, the baseline, validation), or none yet */
  labeled: string | null;
}

export interface InputsOptions extends Omit<ImageFolderOptions, 'imageSize' | 'channels'> {
  imageSize?: number | 'auto';
  channels?: 1 | 3 | 'auto';
  /** The run's classes, when it has them already: labels must be among them, and each class labeled. */
  classes?: readonly string[];
  /** A test set: some of the classes may have no image. */
  anyClasses?: boolean;
}

export type InputsDataset = ImageDataset &
  FolderRead & {
    /** the folder image ids are relative to */
    root: string;
    /** positions of the labeled images, sorted */
    labeledIndices: number[];
    /** labeled images that were also in the unlabeled folders */
    labeledInPool: number;
    /** CSV rows still without a label */
    unlabeledRows: number;
  };

/** Every image file under a folder, at any depth (hidden entries skipped), sorted. */
export function listImagesDeep(dir: string): { files: string[]; nonImages: number } {
  const files: string[] = [];
  let nonImages = 0;
  const seenDirs = new Set<string>(existsSync(dir) ? [realpathSync(resolve(dir))] : []);
  const walk = (folder: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(folder).sort();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new LabelFileError(`${folder}: cannot read the image folder (${code ?? (e as Error).message})${code === 'ENOENT' ? ': check the path' : code === 'ENOTDIR' ? ': expected a folder' : ''}`);
    }
    for (const name of entries) {
      if (name.startsWith('.')) continue;
      const path = join(folder, name);
      let st;
      try {
        st = statSync(path);
      } catch {
        nonImages++; // a broken link: passed over, as a file that is not an image
        continue;
      }
      if (st.isDirectory()) {
        // A link back to a folder above would list it again, forever.
        const real = realpathSync(path);
        if (!seenDirs.has(real)) (seenDirs.add(real), walk(path));
      } else if (st.isFile() && IMAGE_EXTENSIONS.has(extname(name).toLowerCase())) files.push(path);
      else if (st.isFile()) nonImages++;
    }
  };
  walk(resolve(dir));
  return { files, nonImages };
}

/** The deepest folder holding every file. */
export function commonFolder(files: readonly string[]): string {
  let parts = dirname(files[0]!).split(sep);
  for (const f of files) {
    const p = dirname(f).split(sep);
    let k = 0;
    while (k < parts.length && k < p.length && parts[k] === p[k]) k++;
    parts = parts.slice(0, k);
  }
  return parts.join(sep) || sep;
}

const sha1 = (file: string): string => createHash('sha1').update(readFileSync(file)).digest('hex');

/**
 * For each labeled image, its position among `pool` (the same file, else the same bytes), or
 * -1. Only pool files of a labeled image's byte size are hashed.
 */
function findInPool(pool: readonly string[], labeled: readonly string[]): number[] {
  const real = (f: string): string => {
    try {
      return realpathSync(f);
    } catch {
      return f;
    }
  };
  const byPath = new Map(pool.map((f, i) => [real(f), i]));
  const found = labeled.map((f) => byPath.get(real(f)) ?? -1);
  const sizes = new Map<number, number[]>();
  found.forEach((at, k) => {
    if (at >= 0) return;
    const size = statSync(labeled[k]!).size;
    if (!sizes.has(size)) sizes.set(size, []);
    sizes.get(size)!.push(k);
  });
  if (sizes.size === 0) return found;
  const byHash = new Map<string, number>();
  pool.forEach((f, i) => {
    if (sizes.has(statSync(f).size)) byHash.set(sha1(f), i);
  });
  for (const ks of sizes.values()) for (const k of ks) found[k] = byHash.get(sha1(labeled[k]!)) ?? -1;
  return found;
}

/** The class index of each labeled image, checked against the run's classes where it has them. */
function classIndices(set: LabelSet, classes: readonly string[] | undefined, anyClasses = false): { classes: string[]; index: number[] } {
  const list = classes ? [...classes] : set.classes;
  const at = new Map(list.map((c, i) => [c, i]));
  const index = set.images.map((img) => {
    const i = at.get(img.label);
    if (i === undefined) throw new LabelFileError(`${img.where}: the label '${img.label}' is not one of the run's classes (${list.join(', ')})`);
    return i;
  });
  if (list.length < 2 && !anyClasses) throw new LabelFileError(`${set.source}: every labeled image is '${list[0]}': a classifier needs at least two classes`);
  const counted = new Set(index);
  const missing = list.filter((_, i) => !counted.has(i));
  if (missing.length && !anyClasses) throw new LabelFileError(`${set.source}: no image is labeled ${missing.map((c) => `'${c}'`).join(', ')}; every class of the run (${list.join(', ')}) needs at least one`);
  return { classes: list, index };
}

/** The inputs listed and their labels read, without reading an image: the unlabeled files, the label set and its class of each image. */
export interface ListedInputs {
  pool: string[];
  nonImages: number;
  set: LabelSet | null;
  classes: string[];
  /** each labeled image's class index */
  index: number[];
}

/** Lists the unlabeled folders and reads the labeled set, checked against the classes given (what --dry-run checks, too). */
export function listInputs(inputs: DataInputs, o: Pick<InputsOptions, 'classes' | 'anyClasses'> = {}): ListedInputs {
  if (inputs.unlabeled.length === 0 && !inputs.labeled) throw new LabelFileError('no images: give --unlabeled DIR, --labeled DIR|FILE.csv, or both');
  const pool: string[] = [];
  let nonImages = 0;
  const seen = new Set<string>();
  for (const dir of inputs.unlabeled) {
    const listed = listImagesDeep(dir);
    if (listed.files.length === 0) throw new LabelFileError(`${dir}: no images found (looked for ${[...IMAGE_EXTENSIONS].join(', ')} files at any depth)`);
    nonImages += listed.nonImages;
    for (const f of listed.files) if (!seen.has(f)) (seen.add(f), pool.push(f));
  }
  const set = inputs.labeled ? readLabels(inputs.labeled) : null;
  const mapped = set ? classIndices(set, o.classes, o.anyClasses) : { classes: o.classes ? [...o.classes] : [], index: [] };
  return { pool, nonImages, set, ...mapped };
}

/** Opens the unlabeled folders and the labeled set as one data set. */
export async function openInputs(inputs: DataInputs, o: InputsOptions = {}): Promise<InputsDataset> {
  const { pool, nonImages, set, classes, index } = listInputs(inputs, o);
  const files = [...pool];
  const fileLabels = new Array<number>(pool.length).fill(-1);
  let inPool = 0;
  if (set) {
    const found = findInPool(pool, set.images.map((i) => i.file));
    found.forEach((at, k) => {
      const label = index[k]!;
      if (at >= 0) {
        inPool++;
        if (fileLabels[at]! >= 0 && fileLabels[at] !== label) throw new LabelFileError(`${set.images[k]!.where}: the same image is labeled '${classes[fileLabels[at]!]}' on another row and '${classes[label]}' here`);
        fileLabels[at] = label;
      } else {
        files.push(set.images[k]!.file);
        fileLabels.push(label);
      }
    });
  }
  const whole = inputs.unlabeled.length === 1 && files.length === pool.length;
  const root = whole ? resolve(inputs.unlabeled[0]!) : commonFolder(files);
  // Sorted by path within the root: the shard cache's order, so that the same files find the same shards.
  const order = files.map((_, i) => i).sort((a, b) => (relative(root, files[a]!) < relative(root, files[b]!) ? -1 : 1));
  const ds = await loadImageFiles(
    { root, files: order.map((i) => files[i]!), labels: set ? order.map((i) => fileLabels[i]!) : null, classes, nonImages, ...(whole ? {} : { listing: listingKey(root, files) }) },
    { ...o, imageSize: o.imageSize ?? 'auto', channels: o.channels ?? 'auto' },
  );
  const labeledIndices: number[] = [];
  if (ds.labels) ds.labels.forEach((l, i) => void (l >= 0 && labeledIndices.push(i)));
  const source = [...inputs.unlabeled.map((d) => resolve(d)), ...(set ? [set.source] : [])].join(' + ');
  return { ...ds, source, root, labeledIndices, labeledInPool: inPool, unlabeledRows: set?.unlabeledRows ?? 0 };
}

/** The images per class among the labeled ones. */
export function labelCounts(ds: Pick<ImageDataset, 'labels' | 'classes'>, indices: readonly number[]): number[] {
  const counts = new Array<number>(ds.classes.length).fill(0);
  for (const i of indices) counts[ds.labels![i]!]!++;
  return counts;
}

/** A name for a choice of files under a root: its own shard folders in the cache. */
function listingKey(root: string, files: readonly string[]): string {
  return createHash('sha256').update(files.map((f) => relative(root, f)).sort().join('\n')).digest('hex').slice(0, 16);
}
