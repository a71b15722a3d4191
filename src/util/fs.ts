// The one atomic write: a temporary file beside the target, flushed to disk, then renamed
// over it, so a reader (or a run stopped mid-write, or a machine that loses power) sees the
// old file or the new, never half.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Writes a buffer whole at the file's position. */
export function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done);
}

/** `write` fills a temporary file (its descriptor), which is flushed and renamed over `file`; `suffix` names the temporary file. */
export function writeAtomicWith(file: string, write: (fd: number) => void, suffix = `.tmp-${process.pid}`): void {
  mkdirSync(dirname(resolve(file)), { recursive: true });
  const tmp = `${file}${suffix}`;
  const fd = openSync(tmp, 'w');
  try {
    write(fd);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, file);
}

export function writeAtomic(file: string, bytes: Uint8Array | string, suffix?: string): void {
  writeAtomicWith(file, (fd) => writeAll(fd, typeof bytes === 'string' ? Buffer.from(bytes) : bytes), suffix);
}
