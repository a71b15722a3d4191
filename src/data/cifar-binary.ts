// The CIFAR-10 / CIFAR-100 binary releases: records of label byte(s) + 3072 bytes (RGB planes of 32x32).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageDataset } from './dataset';

const PIXELS = 3 * 32 * 32;

interface Layout {
  files: string[];
  /** bytes before the pixels; the label used is the last of them (CIFAR-100: fine label) */
  labelBytes: number;
  classes: number;
  classNames: string;
}

function layout(kind: 'cifar10' | 'cifar100', split: 'train' | 'test'): Layout {
  if (kind === 'cifar10') {
    return {
      files: split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'],
      labelBytes: 1,
      classes: 10,
      classNames: 'batches.meta.txt',
    };
  }
  return { files: [`${split}.bin`], labelBytes: 2, classes: 100, classNames: 'fine_label_names.txt' };
}

/** A whole number of records, or an error naming the file. */
function checkRecords(path: string, bytes: number, record: number): void {
  if (bytes === 0 || bytes % record !== 0) throw new Error(`${path}: ${bytes} bytes is not a whole number of ${record}-byte records (truncated or not the binary release?)`);
}

/** The split's files, found and their sizes checked without reading them; the images they hold. */
export function cifarBinaryFiles(dir: string, kind: 'cifar10' | 'cifar100', split: 'train' | 'test'): { files: string[]; count: number } {
  const l = layout(kind, split);
  const record = l.labelBytes + PIXELS;
  let count = 0;
  const files = l.files.map((f) => {
    const path = join(dir, f);
    if (!existsSync(path)) {
      throw new Error(`${path} not found: ${kind}-bin:DIR needs the folder of the ${kind === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} binary release (${l.files.join(', ')})`);
    }
    const bytes = statSync(path).size;
    checkRecords(path, bytes, record);
    count += bytes / record;
    return path;
  });
  return { files, count };
}

export function readCifarBinary(dir: string, kind: 'cifar10' | 'cifar100', split: 'train' | 'test'): ImageDataset {
  const l = layout(kind, split);
  const record = l.labelBytes + PIXELS;
  const chunks: Buffer[] = [];
  for (const path of cifarBinaryFiles(dir, kind, split).files) {
    const data = readFileSync(path);
    checkRecords(path, data.length, record);
    chunks.push(data);
  }
  const all = Buffer.concat(chunks);
  const count = all.length / record;
  const pixels = new Uint8Array(count * PIXELS);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = all[i * record + l.labelBytes - 1]!;
    if (label >= l.classes) throw new Error(`${dir}: image ${i} of the ${split} split has label ${label}, outside 0..${l.classes - 1}`);
    labels[i] = label;
    pixels.set(all.subarray(i * record + l.labelBytes, (i + 1) * record), i * PIXELS);
  }
  const namesFile = join(dir, l.classNames);
  const names = existsSync(namesFile) ? readFileSync(namesFile, 'utf8').split(/\r?\n/).filter((s) => s.trim()) : [];
  const classes = names.length === l.classes ? names : Array.from({ length: l.classes }, (_, i) => String(i));
  return {
    pixels,
    count,
    channels: 3,
    size: 32,
    labels,
    classes,
    ids: Array.from({ length: count }, (_, i) => `${split}:${i}`),
    source: `${kind}-bin:${dir}`,
    skipped: { nonImages: 0, bad: [] },
  };
}
