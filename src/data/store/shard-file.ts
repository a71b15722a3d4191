// One shard on disk: <key>.bin holds the stored images' planes back to back, <key>.json
// what they are (the files' stamps, each image's extent and offset, or why it could not be
// decoded). The data is written first and the index last, each renamed into place, so a
// shard with an index is complete; a stopped decode leaves only temporary files, removed
// by the next one.
import { closeSync, existsSync, linkSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
export const tempName = (file: string): string => `${file}.tmp-${process.pid}`;

/** A shard's index when the shard is complete and holds exactly these files; else null. */
export function readShardIndex(dir: string, key: string, files: readonly FileStamp[]): ShardIndex | null {
  const file = shardIndex(dir, key);
  if (!existsSync(file)) return null;
  try {
    const index = JSON.parse(readFileSync(file, 'utf8')) as ShardIndex;
    if (index.version !== SHARD_VERSION || index.key !== key || !Array.isArray(index.sums) || JSON.stringify(index.files) !== JSON.stringify(files)) return null;
    if (!existsSync(shardData(dir, key))) return null;
    return index;
  } catch {
    return null;
  }
}

/** Renames a finished shard's temporary files into place: data first, index last. */
export function commitShard(dir: string, index: ShardIndex): void {
  const data = shardData(dir, index.key);
  renameSync(tempName(data), data);
  const json = shardIndex(dir, index.key);
  writeFileSync(tempName(json), JSON.stringify(index));
  renameSync(tempName(json), json);
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const lockFile = (dir: string, key: string): string => join(dir, `${key}.lock`);

/** Claims a shard for this process to decode (a lock file holding its pid); false when a live process holds it. */
export function claimShard(dir: string, key: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    // Written whole under a temporary name, then linked into place: a claim always holds its pid.
    const mine = tempName(lockFile(dir, key));
    writeFileSync(mine, String(process.pid));
    try {
      linkSync(mine, lockFile(dir, key));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder = 0;
      try {
        holder = Number(readFileSync(lockFile(dir, key), 'utf8'));
      } catch {
        continue; // let go of meanwhile: try again
      }
      if (holder !== process.pid && alive(holder)) return false;
      rmSync(lockFile(dir, key), { force: true });
    } finally {
      rmSync(mine, { force: true });
    }
  }
  return false;
}

export function releaseShard(dir: string, key: string): void {
  rmSync(lockFile(dir, key), { force: true });
}

/** Removes what is not one of `keep`'s shards: old shards, and temporary files of processes that are gone. */
export function sweepShards(dir: string, keep: ReadonlySet<string>): number {
  if (!existsSync(dir)) return 0;
  let removed = 0;
  for (const name of readdirSync(dir)) {
    const tmp = /\.tmp-(\d+)$/.exec(name);
    if (name.endsWith('.lock')) continue; // claims: released by their holder, taken over when it is gone
    const key = name.replace(/\.(bin|json)(\.tmp-\d+)?$/, '');
    const stale = tmp ? !alive(Number(tmp[1])) || Number(tmp[1]) === process.pid : !keep.has(key);
    if (stale) {
      rmSync(join(dir, name), { force: true });
      removed++;
    }
  }
  return removed;
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
