// `simclr views`: a grid of images beside pairs of their SimCLR views, to see what the
// augmentations do.
import * as t from '../torch';
import { simclrViewOptions, viewsGridOf } from '../augment';
import { hostTensor, listImages, seededRandom, streamImages, writePng, type StreamChunk, undecodableError } from '../data';
import { chooseShape, readShapes } from '../data';
import { UsageError, type Parsed } from './options';
import type { COMMANDS } from './specs';
import { channelsOption, skippedLine } from './images';

export function requireViewsFolder(dir: string | undefined): asserts dir is string {
  if (!dir) throw new UsageError('--data <image folder> is required, e.g. simclr views --data photos --out views.png');
}

export async function viewsCommand({ values: o }: { values: Parsed<typeof COMMANDS.views.options> }): Promise<number> {
  const { data: dir, out, count, seed } = o;
  requireViewsFolder(dir);
  const list = listImages(dir);
  const pick = seededRandom(seed);
  const drawn = Array.from({ length: Math.min(count, list.files.length) }, () => list.files[Math.floor(pick() * list.files.length)]!);
  // Size and channels as a run on this folder would choose them, from the drawn images' headers.
  const shape = chooseShape(await readShapes(drawn), { imageSize: o.imageSize, channels: channelsOption(o.channels) });
  const { imageSize: size, channels } = shape;
  const zoom = o.zoom ?? (size <= 64 ? 4 : 1);
  // Each image at its stored size, as training reads it: the views are cropped from that.
  let decoded: StreamChunk | null = null;
  for await (const chunk of streamImages(drawn, { size, channels, chunk: drawn.length })) decoded = chunk;
  const failed = decoded!.failed;
  if (failed.length && !o.skipBadImages) {
    throw undecodableError(drawn[failed[0]!.position]!, failed[0]!.error, failed.length);
  }
  if (failed.length) console.log(skippedLine(failed.map((f) => drawn[f.position]!)));
  const chosen = decoded!.positions;
  if (chosen.length === 0) throw new Error(`${dir}: none of the ${drawn.length} images drawn could be decoded`);
  t.manualSeed(seed);
  const stored = decoded!.batch;
  const grid = t.tidy(() => viewsGridOf(hostTensor(stored), size, simclrViewOptions(size), zoom, stored.extents));
  await writePng(out, grid.chw, channels, grid.height, grid.width);
  console.log(`wrote ${out}: ${chosen.length} images from ${dir} (columns: original, view 1, view 2; ${size}px ${channels === 1 ? 'gray' : 'RGB'}, seed ${seed})`);
  return 0;
}
