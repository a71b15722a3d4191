// The simulated annotator of benchmarks: fills in a suggest-labels CSV with the labels a
// data set already has (its class folders), for the listed images only. It is the only
// place hidden labels are read; training then reads the filled CSV as a user's.
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { writeLabelCsv, type LabelRow } from './write';

/**
 * Labels every row of `csvFile` with the name of its image's parent folder (a labeled image
 * folder's class) and writes it back. Returns how many rows it labeled.
 */
export function annotate(csvFile: string): number {
  const base = dirname(resolve(csvFile));
  const records = parse(readFileSync(csvFile, 'utf8'), { columns: true, skip_empty_lines: true, bom: true }) as Record<string, string>[];
  const rows: LabelRow[] = records.map((r) => {
    const file = resolve(base, r.path ?? '');
    const { path: _p, label: _l, ...extra } = r;
    return { file, label: basename(dirname(file)), extra };
  });
  writeLabelCsv(csvFile, rows);
  return rows.length;
}
