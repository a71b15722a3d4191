// Which images go in which shard. Shard boundaries are content-defined on the sorted list
// of relative paths (a boundary follows a file whose path hashes to 0 mod the mean shard
// length), so an added or removed file moves no boundary but its own shard's, and a shard
// is named by a hash of what it holds (paths, sizes, times, the stored size): a changed,
// added or removed file makes one shard new, and every other shard is found as it was.
import { createHash } from 'node:crypto';

/** [relative path, bytes, mtime ms] of a listed file. */
export type FileStamp = [string, number, number];

export interface ShardPlan {
  /** the shard's name: a hash of its files' stamps and the store settings */
  key: string;
  /** positions of its files in the listing (contiguous) */
  start: number;
  end: number;
}

/** 32-bit FNV-1a of a string's UTF-16 units. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h >>> 0;
}

/**
 * Mean images per shard for a target shard size: about `targetBytes` of stored images,
 * between 16 and 4096 images.
 */
export function meanShardImages(size: number, channels: number, targetBytes = 64 * 2 ** 20): number {
  const perImage = channels * size * size * 1.15 * 1.15 * 1.2;
  return Math.min(4096, Math.max(16, Math.round(targetBytes / perImage)));
}

/** Splits a listing into shards of `mean` images on average (at most 3x that). */
export function planShards(files: readonly FileStamp[], mean: number, settings: string): ShardPlan[] {
  const plans: ShardPlan[] = [];
  const cap = Math.max(1, 3 * mean);
  let start = 0;
  const close = (end: number): void => {
    const key = createHash('sha256').update(settings).update(JSON.stringify(files.slice(start, end))).digest('hex').slice(0, 24);
    plans.push({ key, start, end });
    start = end;
  };
  for (let i = 0; i < files.length; i++) {
    if (fnv1a(files[i]![0]) % mean === 0 || i + 1 - start >= cap) close(i + 1);
  }
  if (start < files.length) close(files.length);
  return plans;
}
