// Label sources: class folders, a CSV of paths and labels, and the simulated annotator that
// benchmarks use to reveal a data set's own labels for chosen images only.
import { statSync } from 'node:fs';
import { readLabelCsv, LabelFileError } from './csv';
import { readLabelFolder } from './folder';
import type { LabelSet } from './types';

export * from './types';
export { LabelFileError, readLabelCsv, sortedClasses } from './csv';
export { readLabelFolder } from './folder';
export { csvPath, writeLabelCsv, type LabelRow } from './write';
export { annotate } from './annotator';
export { parseClassList } from './classes';

/** A labeled folder (class subfolders) or a CSV, as --labeled names it. */
export function readLabels(spec: string): LabelSet {
  let isDir: boolean;
  try {
    isDir = statSync(spec).isDirectory();
  } catch (e) {
    throw new LabelFileError(`${spec}: cannot read the labeled images (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give a folder of class subfolders or a CSV of path,label rows`);
  }
  return isDir ? readLabelFolder(spec) : readLabelCsv(spec);
}
