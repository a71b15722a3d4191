// The decoded cache of an image folder: shards in SIMCLR_CACHE/folders/<key>/, found again
// by what they hold. Missing shards are decoded in parallel (worker threads, each with
// sharp), with progress and time left on stderr; a stopped decode keeps the shards it
// finished, and the next one decodes only the rest. A changed, added or removed file makes
// only its own shard new.
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Progress } from '../../util/progress';
import type { DecodeJob, DecodeMessage } from './decode-worker';
import { claimShard, commitShard, readShardIndex, releaseShard, renewShard, shardData, sweepShards, SHARD_VERSION, tempName, type ShardIndex } from './shard-file';
import { leaseMs } from './lease';
import { meanShardImages, planShards, type FileStamp, type ShardPlan } from './shard-plan';
import { ShardStore } from './shard-store';
import { STORE_MAX_ASPECT, STORE_SCALE } from './stored';

export interface ShardCacheOptions {
  /** the folder (absolute) */
  root: string;
  /** its image files, in data-set order */
  files: FileStamp[];
  size: number;
  channels: 1 | 3;
  cacheDir: string;
  /** Mean images per shard. Default: about 64 MiB of stored images per shard. */
  shardImages?: number;
  /** Decoding worker threads. Default: the machine's cores. */
  workers?: number;
  /** Stops decoding (what is finished is kept); the open rejects. */
  signal?: AbortSignal;
  /** Called as images finish decoding: (decoded, to decode). */
  onProgress?: (done: number, total: number) => void;
  /** No progress line on stderr. */
  quiet?: boolean;
  /**
   * A listing that is not the whole folder (chosen files, as a label CSV names them) gets
   * shard folders of its own under this key, so that its sweep never removes the shards of
   * the folder's other listings.
   */
  listing?: string;
}

export interface ShardCache {
  store: ShardStore;
  /** listing positions of files that could not be decoded, with why */
  bad: number[];
  errors: Map<number, string>;
  /** the shards' folder */
  dir: string;
  shards: number;
  /** shards and images this process decoded (not those another process wrote meanwhile) */
  decodedShards: number;
  decodedImages: number;
}

/** The folder a data set's shards live in: one per (folder, size, channels, store format). */
export function shardDir(cacheDir: string, root: string, size: number, channels: number, listing?: string): string {
  const key = createHash('sha256').update(JSON.stringify([root, size, channels, SHARD_VERSION, STORE_SCALE, STORE_MAX_ASPECT, ...(listing ? [listing] : [])])).digest('hex').slice(0, 24);
  return join(cacheDir, 'folders', key);
}

export async function openShardCache(o: ShardCacheOptions): Promise<ShardCache> {
  const dir = shardDir(o.cacheDir, o.root, o.size, o.channels, o.listing);
  const mean = o.shardImages ?? meanShardImages(o.size, o.channels);
  if (!(mean >= 1)) throw new Error(`shard size must be at least 1 image, got ${mean}`);
  const plans = planShards(o.files, mean, JSON.stringify([SHARD_VERSION, o.size, o.channels, STORE_SCALE, STORE_MAX_ASPECT]));
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new Error(`${dir}: cannot write the decoded cache (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); set SIMCLR_CACHE to a folder you can write`);
  }
  sweepShards(dir, new Set(plans.map((p) => p.key)), o.files);
  const indexes = plans.map((p) => readShardIndex(dir, p.key, o.files.slice(p.start, p.end)));
  const missing = plans.map((p, s) => ({ p, s })).filter(({ s }) => !indexes[s]);
  const toDecode = missing.reduce((n, { p }) => n + p.end - p.start, 0);
  let mine = { shards: 0, images: 0 };
  if (missing.length > 0) {
    mine = await decodeShards(o, dir, missing, toDecode, (s, index) => (indexes[s] = index));
    sweepShards(dir, new Set(plans.map((p) => p.key)), o.files);
  }
  return { ...assemble(dir, o, plans, indexes as ShardIndex[]), dir, shards: plans.length, decodedShards: mine.shards, decodedImages: mine.images };
}

function assemble(dir: string, o: ShardCacheOptions, plans: ShardPlan[], indexes: ShardIndex[]): Pick<ShardCache, 'store' | 'bad' | 'errors'> {
  const bad: number[] = [];
  const errors = new Map<number, string>();
  let good = 0;
  for (const index of indexes) for (const e of index.entries) if (e) good++;
  const shard = new Int32Array(good);
  const offset = new Float64Array(good);
  const heights = new Uint16Array(good);
  const widths = new Uint16Array(good);
  let k = 0;
  plans.forEach((p, s) => {
    indexes[s]!.entries.forEach((e, j) => {
      if (!e) {
        bad.push(p.start + j);
        errors.set(p.start + j, indexes[s]!.errors[j] ?? 'not decoded');
        return;
      }
      [heights[k], widths[k], offset[k]] = e;
      shard[k++] = s;
    });
  });
  const files = plans.map((p) => shardData(dir, p.key));
  const totals = { sums: new Array<number>(o.channels).fill(0), squares: new Array<number>(o.channels).fill(0), pixels: 0 };
  for (const index of indexes) {
    for (let c = 0; c < o.channels; c++) {
      totals.sums[c]! += index.sums[c]!;
      totals.squares[c]! += index.squares[c]!;
    }
    totals.pixels += index.pixels;
  }
  return { store: new ShardStore({ channels: o.channels, size: o.size, files, shard, offset, heights, widths }, totals), bad, errors };
}

/**
 * Decodes the missing shards on a pool of worker threads, committing each as it finishes.
 * Each shard is claimed first (a lock file): a shard another process is decoding (the other
 * workers of a data-parallel run, a second command on the same folder) is waited for, not
 * decoded twice, and taken over if that process is gone.
 */
async function decodeShards(o: ShardCacheOptions, dir: string, missing: { p: ShardPlan; s: number }[], total: number, done: (s: number, index: ShardIndex) => void): Promise<{ shards: number; images: number }> {
  const threads = Math.max(1, Math.min(o.workers ?? availableParallelism(), missing.length));
  const progress = o.quiet ? null : new Progress(`decoding ${o.root} (${missing.length} shard${missing.length > 1 ? 's' : ''} to write)`, total, 'img');
  let decoded = 0;
  let written = 0;
  let own = 0;
  const queue = [...missing];
  const elsewhere: typeof missing = [];
  const workers: Worker[] = [];
  const idle: Worker[] = [];
  const claimed = new Set<string>();
  let timer: NodeJS.Timeout | null = null;
  // The claims' leases, renewed while this process decodes, so that no other job takes them over.
  const heartbeat = setInterval(() => {
    for (const key of claimed) renewShard(dir, key);
  }, leaseMs() / 4);
  heartbeat.unref();
  const count = (n: number): void => {
    decoded += n;
    o.onProgress?.(decoded, total);
    progress?.update(decoded, decoded);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      let running = 0;
      let failed = false;
      const fail = (e: Error): void => {
        if (!failed) reject(e);
        failed = true;
      };
      const onAbort = (): void => fail(new Error(`decoding ${o.root} stopped: ${written} of ${missing.length} shards written, kept in ${dir}; read the folder again to continue`));
      if (o.signal?.aborted) return onAbort();
      o.signal?.addEventListener('abort', onAbort, { once: true });
      // Shards other processes hold: finished by them, or theirs to take over when they are gone.
      const check = (): void => {
        timer = null;
        for (let i = elsewhere.length - 1; i >= 0; i--) {
          const { p, s } = elsewhere[i]!;
          const index = readShardIndex(dir, p.key, o.files.slice(p.start, p.end));
          if (index) {
            done(s, index);
            count(p.end - p.start);
            elsewhere.splice(i, 1);
          } else if (claimShard(dir, p.key)) {
            claimed.add(p.key);
            queue.push(elsewhere.splice(i, 1)[0]!);
          }
        }
        while (idle.length && queue.length) give(idle.pop()!);
        finishOrWait();
      };
      const finishOrWait = (): void => {
        if (failed || running > 0 || queue.length > 0) return;
        if (elsewhere.length === 0) resolve();
        else timer ??= setTimeout(check, 500);
      };
      const give = (w: Worker): void => {
        if (failed) return;
        while (queue.length > 0) {
          const job = queue.shift()!;
          const { p } = job;
          if (!claimed.has(p.key) && !claimShard(dir, p.key)) {
            elsewhere.push(job);
            continue;
          }
          // Written by another process since this one looked (it commits before it lets go).
          const index = readShardIndex(dir, p.key, o.files.slice(p.start, p.end));
          if (index) {
            releaseShard(dir, p.key);
            claimed.delete(p.key);
            done(job.s, index);
            count(p.end - p.start);
            continue;
          }
          claimed.add(p.key);
          running++;
          const message: DecodeJob = { root: o.root, dir, key: p.key, files: o.files.slice(p.start, p.end), size: o.size, channels: o.channels, inFlight: 16 };
          w.postMessage(message);
          return;
        }
        idle.push(w);
        finishOrWait();
      };
      for (let i = 0; i < threads; i++) {
        const w = new Worker(join(__dirname, 'decode-worker.js'));
        workers.push(w);
        w.on('error', (e) => fail(e));
        w.on('message', (m: DecodeMessage) => {
          if (failed) return;
          if (m.type === 'progress') count(m.done);
          else if (m.type === 'error') fail(new Error(`decoding ${o.root}: ${m.message}`));
          else {
            running--;
            commitShard(dir, m.index);
            releaseShard(dir, m.index.key);
            claimed.delete(m.index.key);
            written++;
            own += m.index.files.length;
            done(missing.find(({ p }) => p.key === m.index.key)!.s, m.index);
            give(w);
          }
        });
      }
      for (const w of workers) give(w);
    });
    return { shards: written, images: own };
  } finally {
    if (timer) clearTimeout(timer);
    clearInterval(heartbeat);
    progress?.finish();
    await Promise.all(workers.map((w) => w.terminate()));
    // Half-written shards of this process go, and its claims; finished shards stay.
    for (const key of claimed) {
      rmSync(tempName(shardData(dir, key)), { force: true });
      releaseShard(dir, key);
    }
  }
}
