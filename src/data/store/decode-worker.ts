// A worker thread that decodes one shard's files at a time to their stored size and writes
// the shard's data file as they finish; the main thread commits it (shard-cache.ts).
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { decodeStored, loadSharp } from './decode';
import { addToTotals } from './stored';
import { SHARD_VERSION, shardData, tempName, type ShardIndex } from './shard-file';
import type { FileStamp } from './shard-plan';

export interface DecodeJob {
  root: string;
  dir: string;
  key: string;
  files: FileStamp[];
  size: number;
  channels: 1 | 3;
  /** files decoded at once in this worker */
  inFlight: number;
}

export type DecodeMessage = { type: 'progress'; done: number } | { type: 'done'; index: ShardIndex } | { type: 'error'; message: string };

async function decodeShard(job: DecodeJob, post: (m: DecodeMessage) => void): Promise<ShardIndex> {
  const sharp = await loadSharp();
  sharp.concurrency(1);
  const entries: ShardIndex['entries'] = job.files.map(() => null);
  const errors: ShardIndex['errors'] = job.files.map(() => null);
  const fd = openSync(tempName(shardData(job.dir, job.key)), 'w');
  let bytes = 0;
  const totals = { sums: new Array<number>(job.channels).fill(0), squares: new Array<number>(job.channels).fill(0), pixels: 0 };
  try {
    let next = 0;
    const run = async (): Promise<void> => {
      while (next < job.files.length) {
        const i = next++;
        try {
          const img = await decodeStored(sharp, join(job.root, job.files[i]![0]), job.size, job.channels);
          entries[i] = [img.height, img.width, bytes];
          bytes += img.pixels.length;
          writeSync(fd, img.pixels, 0, img.pixels.length, entries[i]![2]);
          addToTotals(totals, img.pixels, job.channels);
        } catch (e) {
          errors[i] = (e as Error).message;
        }
        post({ type: 'progress', done: 1 });
      }
    };
    await Promise.all(Array.from({ length: job.inFlight }, run));
    fsyncSync(fd); // on disk before the shard is renamed into place
  } finally {
    closeSync(fd);
  }
  return { version: SHARD_VERSION, key: job.key, files: job.files, entries, errors, bytes, ...totals };
}

parentPort?.on('message', (job: DecodeJob) => {
  const post = (m: DecodeMessage): void => parentPort!.postMessage(m);
  decodeShard(job, post).then(
    (index) => post({ type: 'done', index }),
    (e: Error) => post({ type: 'error', message: e.message }),
  );
});
