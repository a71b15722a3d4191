// IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw.
import { readFileSync, existsSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Reads an unsigned-byte IDX file (magic 0x00000801 for labels, 0x00000803 for images). */
export function readIdx(file: string): IdxArray {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      raw = gunzipSync(raw);
    } catch (e) {
      throw new Error(`${file}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0 || raw[2] !== 0x08) {
    throw new Error(`${file}: not an unsigned-byte IDX file (bad magic number)`);
  }
  const rank = raw[3]!;
  if (rank < 1 || rank > 4 || raw.length < 4 + 4 * rank) throw new Error(`${file}: IDX header has an invalid rank ${rank}`);
  const dims = Array.from({ length: rank }, (_, i) => raw.readUInt32BE(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (raw.length - start !== count) {
    throw new Error(`${file}: IDX header promises ${dims.join('x')} = ${count} bytes but the file holds ${raw.length - start}`);
  }
  return { dims, data: new Uint8Array(raw.buffer, raw.byteOffset + start, count) };
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export interface LabeledImages {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
}

function findFile(dir: string, base: string): string {
  for (const name of [`${base}.gz`, base]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new Error(
    `${join(dir, base)}(.gz) not found. Install Fashion-MNIST with \`apt-get install dataset-fashion-mnist\` (Debian/Ubuntu), ` +
      'or download the four idx files of the official release into a folder and pass it as fashion-mnist:DIR.',
  );
}

/** The image and label files of a split of an MNIST-style idx folder, found (not read). */
export function idxSplitFiles(dir: string, split: 'train' | 'test'): { images: string; labels: string } {
  const prefix = split === 'train' ? 'train' : 't10k';
  return { images: findFile(dir, `${prefix}-images-idx3-ubyte`), labels: findFile(dir, `${prefix}-labels-idx1-ubyte`) };
}

/** The train or test split of an MNIST-style idx folder. */
export function loadIdxSplit(dir: string, split: 'train' | 'test'): LabeledImages {
  const files = idxSplitFiles(dir, split);
  const images = readIdx(files.images);
  const labels = readIdx(files.labels);
  if (images.dims.length !== 3 || labels.dims.length !== 1 || images.dims[0] !== labels.dims[0]) {
    throw new Error(`${dir}: ${split} images (${images.dims.join('x')}) and labels (${labels.dims.join('x')}) do not pair up`);
  }
  return { images: images.data, labels: labels.data, count: images.dims[0]!, height: images.dims[1]!, width: images.dims[2]! };
}
