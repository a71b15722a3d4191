// `simclr data`: reads (and caches) a data set, prints what it found, optionally writes a label subset.
import { openDataset, stratifiedSubset, writeSubsetFile, describeSpecs, defaultCacheDir } from '../data';
import { Progress } from '../train';
import type { Flags } from './args';
import { UsageError } from './args';
import { parseLabels } from './run-context';

export async function dataCommand(flags: Flags): Promise<number> {
  const spec = flags.string('data', '');
  const imageSize = flags.number('image-size', 0, { min: 0, max: 4096, integer: true });
  const channels = flags.number('channels', 0, { integer: true });
  const skipBad = flags.boolean('skip-bad-images');
  const split = flags.choice('split', ['train', 'test'], 'train');
  const labels = flags.string('labels', '');
  const seed = flags.number('seed', 0, { min: 0, integer: true });
  const out = flags.string('out', 'labeled.txt');
  flags.rejectUnknown();
  if (!spec) throw new UsageError(`--data is required: ${describeSpecs()}`);
  if (channels !== 0 && channels !== 1 && channels !== 3) throw new UsageError(`--channels must be 1 or 3, got ${channels}`);
  let progress: Progress | null = null;
  const started = performance.now();
  const ds = await openDataset(spec, {
    imageSize: imageSize || undefined,
    channels: channels ? (channels as 1 | 3) : undefined,
    skipBad,
    split,
    onProgress: (done, total) => {
      progress ??= new Progress('decoding', total, 'img');
      progress.update(done, done);
    },
  });
  (progress as Progress | null)?.finish();
  const seconds = (performance.now() - started) / 1000;
  console.log(`${ds.source}: ${ds.count} images, ${ds.channels === 1 ? 'gray' : 'RGB'} ${ds.size}x${ds.size}, ${ds.labels ? `${ds.classes.length} classes` : 'unlabeled'}`);
  if (ds.labels) {
    const counts = ds.classes.map((c, i) => `${c} ${ds.labels!.filter((l) => l === i).length}`);
    console.log(`classes: ${counts.join(', ')}`);
  }
  if (ds.skipped.nonImages) console.log(`ignored ${ds.skipped.nonImages} files that are not images`);
  if (ds.skipped.bad.length) console.log(`skipped ${ds.skipped.bad.length} unreadable images: ${ds.skipped.bad.slice(0, 5).join(', ')}${ds.skipped.bad.length > 5 ? ', ...' : ''}`);
  if (ds.fromCache !== undefined) console.log(`${ds.fromCache ? 'read from' : 'decoded into'} the cache in ${defaultCacheDir()} (${seconds.toFixed(1)}s)`);
  if (labels) {
    if (!ds.labels) throw new UsageError(`--labels needs a labeled data set (class subfolders); ${ds.source} has none`);
    const subset = stratifiedSubset(ds.labels, parseLabels(labels), seed);
    writeSubsetFile(out, ds, subset);
    console.log(`wrote ${out}: ${subset.length} labeled images (${labels}, seed ${seed})`);
  }
  return 0;
}
