// A built-in data set written out as an image folder (DIR/<split>/<class>/<n>.png), for the
// benchmarks that choose image files to label: suggest-labels and the label CSVs name files.
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inMemory, openDataset, pngBytes } from '../src/data';

/** Writes `spec`'s train and test splits under `dir` once (a finished folder is kept); returns dir. */
export async function imageFolderOf(spec: string, dir: string): Promise<string> {
  if (existsSync(join(dir, 'done'))) return dir;
  for (const split of ['train', 'test'] as const) {
    const ds = await openDataset(spec, { split });
    const pixels = inMemory(ds);
    const frame = ds.channels * ds.size * ds.size;
    const names = ds.classes.map((c) => c.replace(/[^A-Za-z0-9.-]/g, '_'));
    for (const n of names) mkdirSync(join(dir, split, n), { recursive: true });
    for (let i = 0; i < ds.count; i++) {
      const png = await pngBytes(pixels.subarray(i * frame, (i + 1) * frame), ds.channels, ds.size, ds.size);
      await writeFile(join(dir, split, names[ds.labels![i]!]!, `${String(i).padStart(5, '0')}.png`), png);
    }
  }
  mkdirSync(join(dir, 'done.tmp'), { recursive: true });
  renameSync(join(dir, 'done.tmp'), join(dir, 'done'));
  return dir;
}
