// A built-in data set written out as an image folder (DIR/<split>/<class>/<n>.png): the demo
// and the label-selection bench work on image files, as a user's run does, so that the
// label CSVs name files.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openDataset } from './sources';
import { inMemory } from './dataset';
import { pngBytes } from './image-folder';

export interface FolderLimits {
  /** write only the first this many images of a split */
  train?: number;
  test?: number;
  /** called after every thousand images */
  progress?: (done: number, total: number) => void;
}

/** PNG encodes in flight at once: sharp encodes on its own threads. */
const IN_FLIGHT = 32;

/**
 * Writes `spec`'s train and test splits under `dir` once (a finished folder, marked by its
 * `done` folder, is kept; an unfinished one is written again). Returns dir.
 */
export async function writeImageFolder(spec: string, dir: string, limits: FolderLimits = {}): Promise<string> {
  if (existsSync(join(dir, 'done'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  const splits = [['train', limits.train], ['test', limits.test]] as const;
  const opened = await Promise.all(splits.map(([split]) => openDataset(spec, { split })));
  const total = opened.reduce((n, ds, k) => n + Math.min(ds.count, splits[k]![1] ?? Infinity), 0);
  let done = 0;
  for (const [k, [split, limit]] of splits.entries()) {
    const ds = opened[k]!;
    const count = Math.min(ds.count, limit ?? Infinity);
    const pixels = inMemory(ds);
    const frame = ds.channels * ds.size * ds.size;
    const names = ds.classes.map((c) => c.replace(/[^A-Za-z0-9.-]/g, '_'));
    for (const n of names) mkdirSync(join(dir, split, n), { recursive: true });
    for (let start = 0; start < count; start += IN_FLIGHT) {
      const end = Math.min(count, start + IN_FLIGHT);
      await Promise.all(
        Array.from({ length: end - start }, async (_, j) => {
          const i = start + j;
          const png = await pngBytes(pixels.subarray(i * frame, (i + 1) * frame), ds.channels, ds.size, ds.size);
          await writeFile(join(dir, split, names[ds.labels![i]!]!, `${String(i).padStart(5, '0')}.png`), png);
        }),
      );
      const before = done;
      done += end - start;
      if (limits.progress && Math.floor(done / 1000) > Math.floor(before / 1000)) limits.progress(done, total);
    }
  }
  mkdirSync(join(dir, 'done.tmp'), { recursive: true });
  renameSync(join(dir, 'done.tmp'), join(dir, 'done'));
  return dir;
}
