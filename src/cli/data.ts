// `simclr data`: reads (and caches) a data set, prints what it found, optionally writes a label subset.
import { openDataset, stratifiedSubset, validationSplit, writeSubsetFile, describeSpecs, defaultCacheDir } from '../data';
import { UsageError, type Parsed } from './options';
import type { COMMANDS } from './specs';
import { parseLabels } from '../run/folder';
import { channelsOption, skippedLine } from './images';

export function requireSpec(spec: string | undefined): asserts spec is string {
  if (!spec) throw new UsageError(`--data is required: ${describeSpecs()}`);
}

/** --labels draws from a labeled data set. */
export function checkLabelsOption<T>(labels: T | null | undefined, source: string): asserts labels is T {
  if (!labels) throw new UsageError(`--labels needs a labeled data set (class subfolders); ${source} has none`);
}

export async function dataCommand({ values: o }: { values: Parsed<typeof COMMANDS.data.options> }): Promise<number> {
  const { data: spec, skipBadImages: skipBad, split, seed, out } = o;
  const labels = o.labels ?? '';
  requireSpec(spec);
  const started = performance.now();
  // An image folder's first read shows its own progress (shards, time left); Ctrl-C keeps the shards written.
  const ds = await openDataset(spec, { imageSize: o.imageSize, channels: channelsOption(o.channels), skipBad, split });
  const seconds = (performance.now() - started) / 1000;
  console.log(`${ds.source}: ${ds.count} images, ${ds.channels === 1 ? 'gray' : 'RGB'} ${ds.size}x${ds.size}, ${ds.labels ? `${ds.classes.length} classes` : 'unlabeled'}`);
  console.log(`size: ${ds.auto.imageSize}; channels: ${ds.auto.channels}`);
  if (ds.labels) {
    const perClass = new Array<number>(ds.classes.length).fill(0);
    for (const l of ds.labels) perClass[l] = (perClass[l] ?? 0) + 1;
    const counts = ds.classes.map((c, i) => `${c} ${perClass[i]}`);
    console.log(`classes: ${counts.join(', ')}`);
  }
  if (ds.skipped.nonImages) console.log(`ignored ${ds.skipped.nonImages} files that are not images`);
  if (ds.skipped.bad.length) console.log(skippedLine(ds.skipped.bad));
  if (ds.fromCache !== undefined) {
    const shards = ds.shards ? `, ${ds.shards} shard${ds.shards > 1 ? 's' : ''}` : '';
    const decoded = ds.fromCache ? 'read from' : `decoded ${ds.decodedImages} images${ds.decodedShards ? ` (${ds.decodedShards} shards)` : ''} into`;
    console.log(`${decoded} the cache in ${defaultCacheDir()}${shards} (${seconds.toFixed(1)}s)`);
  }
  if (labels) {
    checkLabelsOption(ds.labels, ds.source);
    // The same draw as finetune's: the validation split is held out first, the labels come from the rest.
    const held = validationSplit(ds.labels, o.val, seed);
    const subset = stratifiedSubset(ds.labels, parseLabels(labels), seed, new Set(held));
    writeSubsetFile(out, ds, subset);
    console.log(`wrote ${out}: ${subset.length} labeled images (${labels}, seed ${seed}) outside the --val ${o.val} validation split, as finetune draws them`);
  }
  return 0;
}
