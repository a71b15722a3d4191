// The labeling page's data: the suggestions CSV read into rows (every column kept), a row's
// label or skip recorded and the CSV rewritten at once (atomically), so stopping loses nothing.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { LabelFileError, writeLabelCsv } from '../data';

export interface SheetRow {
  file: string;
  label: string;
  skipped: boolean;
  extra: Record<string, string>;
}

export class LabelSheet {
  readonly rows: SheetRow[];

  constructor(readonly csv: string) {
    let records: Record<string, string>[];
    try {
      records = parse(readFileSync(csv, 'utf8'), { columns: true, skip_empty_lines: true, bom: true, trim: true }) as Record<string, string>[];
    } catch (e) {
      throw new LabelFileError(`${csv}: cannot read the suggestions (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const base = dirname(resolve(csv));
    this.rows = records.map((r, i) => {
      if (!r.path) throw new LabelFileError(`${csv}, line ${i + 2}: no path (the file needs path and label columns, as suggest-labels writes)`);
      const { path, label, skipped, ...extra } = r;
      return { file: resolve(base, path), label: label ?? '', skipped: skipped === 'yes', extra };
    });
    if (this.rows.length === 0) throw new LabelFileError(`${csv}: no images in it`);
  }

  /** The labels the file already holds (a class list when none is given). */
  labelsInUse(): string[] {
    return [...new Set(this.rows.map((r) => r.label).filter(Boolean))].sort();
  }

  set(row: number, label: string, skipped: boolean): void {
    const r = this.rows[row];
    if (!r) throw new RangeError(`no row ${row}`);
    r.label = skipped ? '' : label;
    r.skipped = skipped;
    this.save();
  }

  save(): void {
    writeLabelCsv(this.csv, this.rows.map((r) => ({ file: r.file, label: r.label, extra: { ...r.extra, skipped: r.skipped ? 'yes' : '' } })));
  }
}
