// Image folders: DIR/<class>/*.{jpg,jpeg,png,webp} (labeled) or DIR/*.{...} (unlabeled):
// listed, their size and channels chosen, and their images decoded with sharp into the
// stored cache (src/data/store), read a batch at a time.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { writeAtomic } from '../util/fs';
import { writeFile } from 'node:fs/promises';
import { extname, join, relative, resolve } from 'node:path';
import type { ImageDataset } from './dataset';
import { defaultCacheDir } from '../torch/cache-dir';
import { decodeAt, decodeStored, loadSharp, type Sharp } from './store/decode';
import { openShardCache } from './store/shard-cache';
import type { FileStamp } from './store/shard-plan';
import { MemoryStore } from './store/memory-store';
import type { StoredImages } from './store/stored';

export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp']);

export interface ImageList {
  files: string[];
  /** class index per file; -1 when the folder has no class subfolders */
  labels: number[];
  classes: string[];
  /** files that are not images, ignored */
  skipped: number;
}

function readDir(dir: string, what: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? ': check the path' : code === 'ENOTDIR' ? ': expected a folder' : '';
    throw new Error(`${dir}: cannot read the ${what} (${code ?? (e as Error).message})${hint}`);
  }
}

/** Lists a folder's images; class subfolders (sorted by name) give labels. */
export function listImages(dir: string): ImageList {
  const entries = readDir(dir, 'image folder');
  const classes = entries.filter((e) => !e.startsWith('.') && statSync(join(dir, e)).isDirectory());
  const out: ImageList = { files: [], labels: [], classes, skipped: 0 };
  const take = (folder: string, label: number): number => {
    let found = 0;
    for (const name of readDir(folder, 'class folder')) {
      const path = join(folder, name);
      if (!statSync(path).isFile()) continue;
      if (IMAGE_EXTENSIONS.has(extname(name).toLowerCase())) {
        out.files.push(path);
        out.labels.push(label);
        found++;
      } else out.skipped++;
    }
    return found;
  };
  if (classes.length > 0) {
    classes.forEach((c, i) => {
      if (take(join(dir, c), i) === 0) {
        throw new Error(`${join(dir, c)}: the class folder '${c}' holds no images (${[...IMAGE_EXTENSIONS].join(', ')}); add some or remove it`);
      }
    });
  } else take(dir, -1);
  if (out.files.length === 0) {
    throw new Error(`${dir}: no images found (looked for ${[...IMAGE_EXTENSIONS].join(', ')} files, in class subfolders or the folder itself)`);
  }
  return out;
}

export interface DecodeOptions {
  /** Skip unreadable images instead of failing; they are listed in the result. */
  skipBad?: boolean;
  /** Called as images finish: (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** One image (a file, or its bytes) as uint8 CHW planes [channels, size, size]: shorter side resized to size, centre-cropped. */
async function decodeWith(sharp: Sharp, input: string | Buffer, size: number, channels: 1 | 3): Promise<Uint8Array> {
  return (await decodeAt(sharp, input, size, size, channels)).pixels;
}

/** One image's bytes (PNG, JPEG, WebP, ...) decoded as predict decodes files and exported models take them: a size x size square. */
export async function decodeImageBytes(bytes: Buffer, size: number, channels: 1 | 3): Promise<Uint8Array> {
  return decodeWith(await loadSharp(), bytes, size, channels);
}

/**
 * The error for images that could not be decoded (without --skip-bad-images): the first
 * file with its reason, and how many more.
 */
export function undecodableError(file: string, reason: string | undefined, count: number): Error {
  const more = count > 1 ? ` (and ${count - 1} more)` : '';
  return new Error(`${file}: cannot decode the image (${reason})${more}; fix or remove it, or pass --skip-bad-images`);
}

/**
 * Runs `decode(i)` for i in 0..count-1 with `inFlight` at once (libvips decodes on its own
 * threads); returns the message of each one that threw, by index.
 */
async function decodeEach(count: number, inFlight: number, decode: (i: number) => Promise<void>, onProgress?: (done: number, total: number) => void): Promise<Map<number, string>> {
  const errors = new Map<number, string>();
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      try {
        await decode(i);
      } catch (e) {
        errors.set(i, (e as Error).message);
      }
      onProgress?.(++done, count);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return errors;
}

/**
 * Decodes files into one uint8 array [N, channels, size, size]: shorter side resized to
 * size, centre-cropped (a few files at once; image folders go through the stored cache,
 * one-off passes through streamImages). libvips decodes on its own threads; a bounded
 * number of files is in flight at once.
 */
export async function decodeImages(files: string[], size: number, channels: 1 | 3, o: DecodeOptions = {}): Promise<{ pixels: Uint8Array; bad: number[] }> {
  const sharp = await loadSharp();
  const plane = size * size;
  const out = new Uint8Array(files.length * channels * plane);
  const errors = await decodeEach(files.length, 32, async (i) => out.set(await decodeWith(sharp, files[i]!, size, channels), i * channels * plane), o.onProgress);
  const bad = [...errors.keys()].sort((a, b) => a - b);
  if (bad.length > 0 && !o.skipBad) {
    throw undecodableError(files[bad[0]!]!, errors.get(bad[0]!), bad.length);
  }
  return { pixels: out, bad };
}

export { defaultCacheDir };

/** The files that decoded and their frames packed together, leaving out those at `bad`. */
export function withoutBad(files: readonly string[], pixels: Uint8Array, bad: readonly number[], frame: number): { files: string[]; pixels: Uint8Array } {
  if (bad.length === 0) return { files: [...files], pixels };
  const skip = new Set(bad);
  const kept = new Uint8Array((files.length - skip.size) * frame);
  const names: string[] = [];
  for (let i = 0; i < files.length; i++) {
    if (skip.has(i)) continue;
    kept.set(pixels.subarray(i * frame, (i + 1) * frame), frame * names.length);
    names.push(files[i]!);
  }
  return { files: names, pixels: kept };
}

export interface ImageFolderOptions extends DecodeOptions {
  /** Side of the square images trained on; 'auto': the images' own when all share one of at most 64px, else 32. */
  imageSize: number | 'auto';
  /** 1 (gray) or 3 (RGB); 'auto': 1 when every image is single-channel, else 3. */
  channels: 1 | 3 | 'auto';
  /** Where decoded images are kept. Default SIMCLR_CACHE or ~/.cache/simclr-ts; null: no cache (decoded into memory). */
  cacheDir?: string | null;
  /** Mean images per cache shard. Default: about 64 MiB of stored images per shard. */
  shardImages?: number;
  /** Decoding worker threads. Default: the machine's cores. */
  decodeWorkers?: number;
  /** Stops a first decode; finished shards are kept and the next read continues from them. */
  signal?: AbortSignal;
  /** No progress line on stderr. */
  quiet?: boolean;
}

/** The largest side an image folder's own size is kept at by --image-size auto. */
export const AUTO_SIZE_LIMIT = 64;
/**
 * The size --image-size auto gives photos (images over 64 px, or of several sizes): 96 px,
 * STL-10's, the standard benchmark of unlabeled and labeled photos; they get the ImageNet
 * stem. Small images keep their own size and the CIFAR stem.
 */
export const DEFAULT_FOLDER_SIZE = 96;

/** What a folder's images are, from their headers: for --channels auto and --image-size auto. */
export interface FolderShape {
  /** every readable image has one colour channel (alpha aside) */
  gray: boolean;
  /** [width, height] when every readable image has the same */
  commonSize: [number, number] | null;
  /** images whose header could not be read (decoding reports them) */
  unreadable: number;
}

/** Reads the headers of image files (not their pixels). */
export async function readShapes(files: string[]): Promise<FolderShape> {
  const sharp = await loadSharp();
  const shape: FolderShape = { gray: true, commonSize: null, unreadable: 0 };
  let sameSize = true;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const file = files[next++]!;
      try {
        const m = await sharp(file).metadata();
        const colours = (m.channels ?? 3) - (m.hasAlpha ? 1 : 0);
        if (colours > 1) shape.gray = false;
        const size: [number, number] = [m.width ?? 0, m.height ?? 0];
        if (shape.commonSize === null && sameSize) shape.commonSize = size;
        else if (shape.commonSize && (shape.commonSize[0] !== size[0] || shape.commonSize[1] !== size[1])) {
          shape.commonSize = null;
          sameSize = false;
        }
      } catch {
        shape.unreadable++;
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  return shape;
}

export interface AutoChoice {
  imageSize: number;
  channels: 1 | 3;
  /** why each was chosen, for `simclr data` and config.json */
  why: { imageSize: string; channels: string };
}

/** Resolves 'auto' sizes and channels from the images' headers (read once, cached with the folder's listing). */
async function resolveAuto(root: string, files: string[], listing: unknown, o: ImageFolderOptions, cacheDir: string | null): Promise<AutoChoice> {
  // Both given: no header needs reading.
  if (o.imageSize !== 'auto' && o.channels !== 'auto') return chooseShape({ gray: false, commonSize: null, unreadable: 0 }, o);
  const key = createHash('sha256').update(JSON.stringify(['shape', root, listing])).digest('hex').slice(0, 24);
  const file = cacheDir ? join(cacheDir, `${key}.shape.json`) : '';
  let shape: FolderShape | null = null;
  if (file && existsSync(file)) {
    try {
      shape = JSON.parse(readFileSync(file, 'utf8')) as FolderShape;
    } catch {
      shape = null;
    }
  }
  if (!shape) {
    shape = await readShapes(files);
    if (file) {
      mkdirSync(cacheDir!, { recursive: true });
      writeAtomic(file, JSON.stringify(shape));
    }
  }
  return chooseShape(shape, o);
}

/** --image-size and --channels, with 'auto' resolved from what the images are. */
export function chooseShape(shape: FolderShape, o: { imageSize: number | 'auto'; channels: 1 | 3 | 'auto' }): AutoChoice {
  const given = (what: string) => `set by --${what}`;
  const channels = o.channels !== 'auto' ? o.channels : shape.gray ? 1 : 3;
  const channelsWhy = o.channels !== 'auto' ? given('channels') : shape.gray ? 'auto: every image has one channel' : 'auto: the images have colour channels';
  let imageSize: number;
  let sizeWhy: string;
  if (o.imageSize !== 'auto') [imageSize, sizeWhy] = [o.imageSize, given('image-size')];
  else if (shape.commonSize && Math.max(...shape.commonSize) <= AUTO_SIZE_LIMIT && Math.min(...shape.commonSize) >= 8) {
    imageSize = Math.min(...shape.commonSize);
    sizeWhy = `auto: every image is ${shape.commonSize[0]}x${shape.commonSize[1]}`;
  } else {
    imageSize = DEFAULT_FOLDER_SIZE;
    const why = shape.commonSize ? `the images are ${shape.commonSize[0]}x${shape.commonSize[1]}, over ${AUTO_SIZE_LIMIT}px` : 'the images differ in size';
    sizeWhy = `auto: ${why}; resized to ${DEFAULT_FOLDER_SIZE}, a size for photos (STL-10's), with the ImageNet stem`;
  }
  return { imageSize, channels, why: { imageSize: sizeWhy, channels: channelsWhy } };
}

/** What reading a folder did: whether it was all in the cache, and how much was decoded. */
export interface FolderRead {
  fromCache: boolean;
  auto: AutoChoice['why'];
  /** cache shards, and those decoded by this read (0 and 0 without a cache) */
  shards: number;
  decodedShards: number;
  decodedImages: number;
}

/**
 * Reads an image folder: its images are stored a little larger than the training size
 * (src/data/store/stored.ts) in the cache's shards, decoded where missing, and read a batch
 * at a time; with cacheDir null, decoded into memory.
 */
export async function loadImageFolder(dir: string, options: ImageFolderOptions): Promise<ImageDataset & FolderRead> {
  const root = resolve(dir);
  const list = listImages(root);
  return loadImageFiles({ root, files: list.files, labels: list.classes.length > 0 ? list.labels : null, classes: list.classes, nonImages: list.skipped }, options);
}

/** Image files under one folder, as a data set reads them: their labels (-1: none) and classes. */
export interface ImageFiles {
  /** the folder the files' ids are relative to (and their cache is keyed by), absolute */
  root: string;
  /** absolute paths, in data-set order */
  files: string[];
  /** class index per file (-1: unlabeled), or null when none is labeled */
  labels: number[] | null;
  classes: string[];
  /** files passed over as not images */
  nonImages: number;
  /** set when the files are a choice among the root's (see ShardCacheOptions.listing) */
  listing?: string;
}

/** Reads listed image files (any folders under `root`) as loadImageFolder reads a folder. */
export async function loadImageFiles(list: ImageFiles, options: ImageFolderOptions): Promise<ImageDataset & FolderRead> {
  const root = list.root;
  const files = list.files.map((f): FileStamp => {
    const st = statSync(f);
    return [relative(root, f), st.size, Math.round(st.mtimeMs)];
  });
  const cacheDir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
  const chosen = await resolveAuto(root, list.files, files, options, cacheDir);
  const size = chosen.imageSize;
  const channels = chosen.channels;
  let stored: StoredImages;
  let bad: number[];
  let errors: Map<number, string>;
  let read: Omit<FolderRead, 'auto'>;
  if (cacheDir) {
    const cache = await openShardCache({ root, files, size, channels, cacheDir, listing: list.listing, shardImages: options.shardImages ?? shardImagesFromEnv(), workers: options.decodeWorkers, signal: options.signal, quiet: options.quiet, onProgress: options.onProgress });
    ({ store: stored, bad, errors } = cache);
    read = { fromCache: cache.decodedShards === 0, shards: cache.shards, decodedShards: cache.decodedShards, decodedImages: cache.decodedImages };
  } else {
    const decoded = await decodeStoredImages(list.files, size, channels, options);
    ({ store: stored, bad, errors } = decoded);
    read = { fromCache: false, shards: 0, decodedShards: 0, decodedImages: list.files.length };
  }
  if (bad.length > 0 && !options.skipBad) {
    stored.close();
    throw undecodableError(list.files[bad[0]!]!, errors.get(bad[0]!), bad.length);
  }
  const badSet = new Set(bad);
  const keep = list.files.map((_, i) => i).filter((i) => !badSet.has(i));
  const labels = list.labels;
  return {
    stored,
    count: stored.count,
    channels,
    size,
    labels: labels ? Int32Array.from(keep, (i) => labels[i]!) : null,
    classes: list.classes,
    ids: keep.map((i) => files[i]![0]),
    source: root,
    skipped: { nonImages: list.nonImages, bad: bad.map((i) => files[i]![0]) },
    auto: chosen.why,
    ...read,
  };
}

/** SIMCLR_SHARD_IMAGES=N: mean images per cache shard (default: about 64 MiB of images per shard). */
function shardImagesFromEnv(): number | undefined {
  const text = process.env.SIMCLR_SHARD_IMAGES;
  if (!text) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`SIMCLR_SHARD_IMAGES must be a whole number of images, at least 1; got '${text}'`);
  return n;
}

/** Decodes files at their stored size into memory (no cache). */
async function decodeStoredImages(files: string[], size: number, channels: 1 | 3, o: DecodeOptions): Promise<{ store: MemoryStore; bad: number[]; errors: Map<number, string> }> {
  const sharp = await loadSharp();
  const images: (Uint8Array | null)[] = files.map(() => null);
  const heights: number[] = files.map(() => 0);
  const widths: number[] = files.map(() => 0);
  const errors = await decodeEach(files.length, 16, async (i) => {
    const img = await decodeStored(sharp, files[i]!, size, channels);
    [images[i], heights[i], widths[i]] = [img.pixels, img.height, img.width];
  }, o.onProgress);
  const bad = [...errors.keys()].sort((a, b) => a - b);
  const kept = files.map((_, i) => i).filter((i) => images[i]);
  const store = new MemoryStore(channels, size, kept.map((i) => images[i]!), kept.map((i) => heights[i]!), kept.map((i) => widths[i]!));
  return { store, bad, errors };
}

/** Writes uint8 CHW planes [channels, height, width] as a PNG. */
export async function writePng(file: string, chw: Uint8Array, channels: 1 | 3, height: number, width: number): Promise<void> {
  await writeFile(file, await pngBytes(chw, channels, height, width));
}

/**
 * uint8 CHW planes [channels, height, width] as PNG bytes; `display` resizes to that many
 * pixels on the longer side (by whole-pixel zoom when enlarging, so pixels stay sharp).
 */
export async function pngBytes(chw: Uint8Array, channels: 1 | 3, height: number, width: number, display?: number): Promise<Buffer> {
  const sharp = await loadSharp();
  const hwc = Buffer.alloc(channels * height * width);
  const plane = height * width;
  for (let p = 0; p < plane; p++) for (let c = 0; c < channels; c++) hwc[p * channels + c] = chw[c * plane + p]!;
  let image = sharp(hwc, { raw: { width, height, channels } });
  const side = Math.max(height, width);
  if (display !== undefined && display !== side) {
    const zoom = display > side ? Math.max(1, Math.floor(display / side)) : display / side;
    image = image.resize(Math.max(1, Math.round(width * zoom)), Math.max(1, Math.round(height * zoom)), { kernel: zoom >= 1 ? 'nearest' : 'lanczos3' });
  }
  // One channel stays one (sharp writes sRGB otherwise), so that the file reads back gray.
  return (channels === 1 ? image.toColourspace('b-w') : image).png().toBuffer();
}
