// One shard on disk: <key>.bin holds the stored images' planes back to back, <key>.json
// what they are (the files' stamps, each image's extent and offset, or why it could not be
// decoded). The data is written first and the index last, each renamed into place, so a
// shard with an index is complete; a stopped decode leaves only temporary files, removed
// by the next one.
import { closeSync, existsSync, linkSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { writeAtomic } from '../../util/fs';
import { isMe, leaseMs, me, parseHolder, processAlive, tempSuffix, tempWriter, whyStale, type Holder } from './lease';
import { join } from 'node:path';
import type { FileStamp } from './shard-plan';

// 2: images are decoded upright by their EXIF orientation.
export const SHARD_VERSION = 2;

export interface ShardIndex {
  version: typeof SHARD_VERSION;
  key: string;
  files: FileStamp[];
  /** per file: [height, width, byte offset] or null when it could not be decoded */
  entries: ([number, number, number] | null)[];
  /** per file: the decoding error, or null */
  errors: (string | null)[];
  bytes: number;
  /** per channel: the sum of the shard's pixel values and of their squares (for the normalisation statistics) */
  sums: number[];
  squares: number[];
  /** pixels per channel in the shard */
  pixels: number;
}

export const shardData = (dir: string, key: string): string => join(dir, `${key}.bin`);
export const shardIndex = (dir: string, key: string): string => join(dir, `${key}.json`);
/** A temporary file of this process's (its host and PID in the name, for sweeps on other hosts). */
export const tempName = (file: string): string => `${file}${tempSuffix()}`;

/**
 * Shards no current listing holds are kept this long after a job last opened or used them
 * (an open store renews them every ten minutes): a replaced version of the same files an
 * hour, another listing's (another job's choice of files) three days.
 */
const REPLACED_AGE_MS = 3600 * 1000;
const OTHER_LISTING_AGE_MS = 3 * 24 * 3600 * 1000;
export const IN_USE_RENEW_MS = 10 * 60 * 1000;

const ageMs = (file: string): number => {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return 0;
  }
};

/**
 * A shard's index when the shard is complete and holds exactly these files; else null. A
 * data file shorter than its index says (a copy cut short, a full disk) is said and taken
 * as missing, so that it is decoded again. Opening it renews the shard's mtime: the sweeps of
 * other jobs keep a shard someone opened lately.
 */
export function readShardIndex(dir: string, key: string, files: readonly FileStamp[]): ShardIndex | null {
  const file = shardIndex(dir, key);
  if (!existsSync(file)) return null;
  try {
    const index = JSON.parse(readFileSync(file, 'utf8')) as ShardIndex;
    if (index.version !== SHARD_VERSION || index.key !== key || !Array.isArray(index.sums) || JSON.stringify(index.files) !== JSON.stringify(files)) return null;
    const data = shardData(dir, key);
    if (!existsSync(data)) return null;
    const size = statSync(data).size;
    if (size < index.bytes) {
      process.stderr.write(`${data}: ${size} bytes where its index says ${index.bytes} (cut short): decoding its images again\n`);
      return null;
    }
    renewMtime(file);
    return index;
  } catch {
    return null;
  }
}

/** A store's shards are in use: their indexes' mtimes renewed, so that sweeps elsewhere keep them. */
export function renewInUse(dataFiles: readonly string[]): void {
  for (const f of dataFiles) renewMtime(f.replace(/\.bin$/, '.json'));
}

function renewMtime(file: string): void {
  try {
    const now = new Date();
    utimesSync(file, now, now);
  } catch {
    // a read-only cache: nothing to renew
  }
}

/** Renames a finished shard's temporary files into place, each flushed to disk first: data first, index last. */
export function commitShard(dir: string, index: ShardIndex): void {
  const data = shardData(dir, index.key);
  renameSync(tempName(data), data);
  writeAtomic(shardIndex(dir, index.key), JSON.stringify(index), tempSuffix());
}

const lockFile = (dir: string, key: string): string => join(dir, `${key}.lock`);

/**
 * Claims a shard for this process to decode: a lock file naming this host, PID and process
 * start time, whose mtime is a lease renewShard keeps fresh. False while another holder may
 * still be working; a stale claim (its holder gone, or its lease run out) is taken over, and said.
 */
export function claimShard(dir: string, key: string): boolean {
  const lock = lockFile(dir, key);
  for (let attempt = 0; attempt < 2; attempt++) {
    // Written whole under a temporary name, then linked into place: a claim always names its holder.
    const mine = tempName(lock);
    writeFileSync(mine, JSON.stringify(me()));
    try {
      linkSync(mine, lock);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder: Holder | null;
      try {
        holder = parseHolder(readFileSync(lock, 'utf8'));
      } catch {
        continue; // let go of meanwhile: try again
      }
      if (holder && isMe(holder)) return true;
      const why = whyStale(holder, ageMs(lock));
      if (!why) return false;
      process.stderr.write(`${lock}: taking over the claim on this shard: ${why}\n`);
      rmSync(lock, { force: true });
    } finally {
      rmSync(mine, { force: true });
    }
  }
  return false;
}

/** Renews this process's claim (its lease): called while it decodes. */
export function renewShard(dir: string, key: string): void {
  renewMtime(lockFile(dir, key));
}

export function releaseShard(dir: string, key: string): void {
  rmSync(lockFile(dir, key), { force: true });
}

/**
 * Removes what no job needs: temporary files whose writer is gone (on this host: no such
 * process; elsewhere: untouched for ten leases), shards that the current version of the
 * same files replaced and nobody used for an hour, and other listings' shards nobody used
 * for three days. Claims are left to their holders (and taken over when stale).
 */
export function sweepShards(dir: string, keep: ReadonlySet<string>, current: readonly FileStamp[] = []): number {
  if (!existsSync(dir)) return 0;
  const paths = new Set(current.map((f) => f[0]));
  let removed = 0;
  const remove = (name: string): void => {
    rmSync(join(dir, name), { force: true });
    removed++;
  };
  for (const name of readdirSync(dir)) {
    if (name.endsWith('.lock')) continue;
    const writer = tempWriter(name);
    if (writer) {
      const gone = writer.here ? writer.pid === process.pid || !processAlive(writer.pid) : ageMs(join(dir, name)) > 10 * leaseMs();
      if (gone) remove(name);
      continue;
    }
    const key = name.replace(/\.(bin|json)$/, '');
    if (keep.has(key)) continue;
    const index = join(dir, `${key}.json`);
    if (!existsSync(index) || ageMs(index) > (replaced(index, paths) ? REPLACED_AGE_MS : OTHER_LISTING_AGE_MS)) remove(name);
  }
  return removed;
}

/** Whether every file of a shard is among the current files: an older version of them, replaced. */
function replaced(index: string, paths: ReadonlySet<string>): boolean {
  if (paths.size === 0) return false;
  try {
    const files = (JSON.parse(readFileSync(index, 'utf8')) as Pick<ShardIndex, 'files'>).files;
    return files.length > 0 && files.every((f) => paths.has(f[0]));
  } catch {
    return false;
  }
}

/** Positioned reads from shard files, with a bounded number of them open at once. */
export class ShardFiles {
  private readonly open = new Map<number, number>();

  constructor(
    readonly files: readonly string[],
    private readonly maxOpen = 64,
  ) {}

  private fd(shard: number): number {
    let fd = this.open.get(shard);
    if (fd !== undefined) {
      this.open.delete(shard);
      this.open.set(shard, fd);
      return fd;
    }
    if (this.open.size >= this.maxOpen) {
      const [oldest, oldFd] = this.open.entries().next().value as [number, number];
      closeSync(oldFd);
      this.open.delete(oldest);
    }
    fd = openSync(this.files[shard]!, 'r');
    this.open.set(shard, fd);
    return fd;
  }

  /** Fills `into` from shard `shard` at byte `offset`. */
  read(shard: number, offset: number, into: Uint8Array): void {
    const fd = this.fd(shard);
    let done = 0;
    while (done < into.length) {
      const n = readSync(fd, into, done, into.length - done, offset + done);
      if (n === 0) throw new Error(`${this.files[shard]}: ends before byte ${offset + into.length} that its index promises (the cache is damaged; delete this file and read the data set again)`);
      done += n;
    }
  }

  close(): void {
    for (const fd of this.open.values()) closeSync(fd);
    this.open.clear();
  }
}
