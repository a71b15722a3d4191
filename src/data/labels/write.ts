// Writing a label CSV (suggest-labels' file, the labeling page's progress, the simulated
// annotator): one header row, paths relative to the CSV, written atomically.
import { dirname, relative, resolve, sep } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { writeAtomic } from '../../util/fs';

export interface LabelRow {
  /** the image file, absolute */
  file: string;
  /** '' until labeled */
  label: string;
  /** further columns (cluster, typicality, why, skipped), written after path and label */
  extra?: Record<string, string | number>;
}

/** A path as the CSV holds it: relative to the CSV's folder, with forward slashes. */
export function csvPath(csvFile: string, file: string): string {
  return relative(dirname(resolve(csvFile)), file).split(sep).join('/');
}

export function writeLabelCsv(csvFile: string, rows: readonly LabelRow[]): void {
  const extraColumns = [...new Set(rows.flatMap((r) => Object.keys(r.extra ?? {})))];
  const records = rows.map((r) => [csvPath(csvFile, r.file), r.label, ...extraColumns.map((c) => String(r.extra?.[c] ?? ''))]);
  writeAtomic(csvFile, stringify([['path', 'label', ...extraColumns], ...records]));
}
