// A class list as a user gives it: comma-separated names, or a labeled folder whose class
// subfolders name them.
import { existsSync, statSync } from 'node:fs';
import { readLabelFolder } from './folder';
import { LabelFileError } from './csv';

export function parseClassList(text: string): string[] {
  if (existsSync(text) && statSync(text).isDirectory()) return readLabelFolder(text).classes;
  const list = text.split(',').map((c) => c.trim()).filter(Boolean);
  if (list.length === 0) throw new LabelFileError(`--classes names no class: give a,b,c or a folder of class subfolders`);
  const twice = list.find((c, i) => list.indexOf(c) !== i);
  if (twice) throw new LabelFileError(`--classes names '${twice}' twice: ${text}`);
  return list;
}
