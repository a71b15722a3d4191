// A CSV of labeled images: a path and a label per row, paths relative to the CSV. A header
// row may name the columns as the CSVs people already have do (path/filepath/file/filename,
// label/class); without one, the first column is the path and the second the label. Rows
// with an empty label are images not labeled yet (a suggest-labels file being filled in).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { IMAGE_EXTENSIONS } from '../image-folder';
import type { LabeledImage, LabelSet } from './types';

const PATH_COLUMNS = ['path', 'filepath', 'file', 'filename', 'file_name', 'image'];
const LABEL_COLUMNS = ['label', 'class', 'category'];

export class LabelFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabelFileError';
  }
}

interface Columns {
  path: number;
  label: number;
  /** the header's row, when the file has one */
  header: boolean;
}

function columnsOf(first: string[], file: string): Columns {
  const names = first.map((c) => c.trim().toLowerCase());
  const path = names.findIndex((n) => PATH_COLUMNS.includes(n));
  const label = names.findIndex((n) => LABEL_COLUMNS.includes(n));
  if (path >= 0 && label >= 0) return { path, label, header: true };
  if (path >= 0 || label >= 0) {
    throw new LabelFileError(`${file}, line 1: a header needs a path column (${PATH_COLUMNS.join(', ')}) and a label column (${LABEL_COLUMNS.join(', ')}); found ${first.map((c) => `'${c}'`).join(', ')}`);
  }
  return { path: 0, label: 1, header: false };
}

function readRows(file: string): { record: string[]; line: number }[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LabelFileError(`${file}: cannot read the label file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const rows = parse(text, { info: true, relax_column_count: true, skip_empty_lines: true, bom: true, trim: true }) as unknown as { record: string[]; info: { lines: number } }[];
    return rows.map((r) => ({ record: r.record, line: r.info.lines }));
  } catch (e) {
    const line = (e as { lines?: number }).lines;
    throw new LabelFileError(`${file}${line ? `, line ${line}` : ''}: not a CSV file (${(e as Error).message.replace(/^Invalid [^:]*: /, '')})`);
  }
}

/**
 * Reads a label CSV. Every labeled path must be an image that exists; a path labeled twice
 * with two labels is an error naming both lines.
 */
export function readLabelCsv(file: string): LabelSet {
  const rows = readRows(file);
  if (rows.length === 0) throw new LabelFileError(`${file}: the label file is empty`);
  const cols = columnsOf(rows[0]!.record, file);
  const base = dirname(resolve(file));
  const images: LabeledImage[] = [];
  const seen = new Map<string, LabeledImage>();
  let unlabeled = 0;
  for (const { record, line } of cols.header ? rows.slice(1) : rows) {
    const where = `${file}, line ${line}`;
    const path = (record[cols.path] ?? '').trim();
    const label = (record[cols.label] ?? '').trim();
    if (!path) throw new LabelFileError(`${where}: no image path in column ${cols.path + 1}`);
    const abs = resolve(base, path);
    if (!IMAGE_EXTENSIONS.has(extname(abs).toLowerCase())) throw new LabelFileError(`${where}: '${path}' is not a ${[...IMAGE_EXTENSIONS].join(', ')} image`);
    if (!existsSync(abs) || !statSync(abs).isFile()) throw new LabelFileError(`${where}: '${path}' does not exist (paths are relative to the CSV's folder, ${base})`);
    if (!label) {
      unlabeled++;
      continue;
    }
    const before = seen.get(abs);
    if (before) {
      if (before.label !== label) throw new LabelFileError(`${where}: '${path}' is labeled '${label}' here and '${before.label}' at ${before.where.slice(file.length + 2)}`);
      continue;
    }
    const image: LabeledImage = { file: abs, label, where };
    seen.set(abs, image);
    images.push(image);
  }
  if (images.length === 0) throw new LabelFileError(`${file}: no labeled rows${unlabeled ? ` (${unlabeled} rows have an empty label: fill in their labels, e.g. with simclr label)` : ''}`);
  return { source: resolve(file), kind: 'csv', images, unlabeledRows: unlabeled, classes: sortedClasses(images) };
}

export function sortedClasses(images: readonly LabeledImage[]): string[] {
  return [...new Set(images.map((i) => i.label))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
