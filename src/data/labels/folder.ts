// A labeled folder: DIR/<class>/<image>, the class folders' names as labels.
import { resolve } from 'node:path';
import { listImages } from '../image-folder';
import type { LabelSet } from './types';
import { LabelFileError } from './csv';

export function readLabelFolder(dir: string): LabelSet {
  const list = listImages(dir);
  if (list.classes.length === 0) throw new LabelFileError(`${dir}: a labeled folder needs class subfolders (DIR/<class>/<image>); its images sit in the folder itself`);
  const images = list.files.map((file, i) => ({ file: resolve(file), label: list.classes[list.labels[i]!]!, where: `${dir}/${list.classes[list.labels[i]!]!}/` }));
  return { source: resolve(dir), kind: 'folder', images, classes: list.classes, unlabeledRows: 0 };
}
