// The one atomic write: a temporary file beside the target, flushed to disk, then renamed
// over it, so a reader (or a run stopped mid-write) sees the old file or the new, never half.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export function writeAtomic(file: string, bytes: Uint8Array | string): void {
  mkdirSync(dirname(resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    const data = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
