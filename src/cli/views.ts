// `simclr views`: a grid of images beside pairs of their SimCLR views, to see what the
// augmentations do.
import * as t from '../torch';
import { simclrViewOptions, simclrViews, toUnit } from '../augment';
import { decodeImages, listImages, seededRandom, writePng } from '../data';
import { chooseShape, readShapes, withoutBad } from '../data';
import { UsageError, type Parsed } from './options';
import type { COMMANDS } from './specs';
import { channelsOption, skippedLine } from './images';

export async function viewsCommand({ values: o }: { values: Parsed<typeof COMMANDS.views.options> }): Promise<number> {
  const { data: dir, out, count, seed } = o;
  if (!dir) throw new UsageError('--data <image folder> is required, e.g. simclr views --data ../shared/datasets/cifar10/train --out views.png');
  const list = listImages(dir);
  const pick = seededRandom(seed);
  const drawn = Array.from({ length: Math.min(count, list.files.length) }, () => list.files[Math.floor(pick() * list.files.length)]!);
  // Size and channels as a run on this folder would choose them, from the drawn images' headers.
  const shape = chooseShape(await readShapes(drawn), { imageSize: o.imageSize, channels: channelsOption(o.channels) });
  const { imageSize: size, channels } = shape;
  const zoom = o.zoom ?? (size <= 64 ? 4 : 1);
  const decoded = await decodeImages(drawn, size, channels, { skipBad: o.skipBadImages });
  if (decoded.bad.length) console.log(skippedLine(decoded.bad.map((i) => drawn[i]!)));
  const { files: chosen, pixels } = withoutBad(drawn, decoded.pixels, decoded.bad, channels * size * size);
  if (chosen.length === 0) throw new Error(`${dir}: none of the ${drawn.length} images drawn could be decoded`);
  t.manualSeed(seed);
  const grid = t.tidy(() => {
    const images = t.fromBytes(pixels, [chosen.length, channels, size, size], 'uint8');
    const [v1, v2] = simclrViews(images, simclrViewOptions(size));
    const original = toUnit(images);
    // Rows: original | view 1 | view 2, with a white gap; each image zoomed for a person to see.
    const gap = t.ones([chosen.length, channels, size, 2]);
    const row = t.cat([original, gap, v1, gap, v2], 3);
    const big = t.F.interpolate(row, [size * zoom, row.shape[3]! * zoom], { mode: 'nearest' });
    const hgap = t.ones([chosen.length, channels, 2 * zoom, row.shape[3]! * zoom]);
    const stacked = t.cat([big, hgap], 2).permute(1, 0, 2, 3).reshape(channels, -1, row.shape[3]! * zoom);
    return stacked.mul(255).round().clamp(0, 255).to('uint8');
  });
  const [, height, width] = grid.shape as [number, number, number];
  await writePng(out, grid.data() as Uint8Array, channels, height, width);
  grid.dispose();
  console.log(`wrote ${out}: ${chosen.length} images from ${dir} (columns: original, view 1, view 2; ${size}px ${channels === 1 ? 'gray' : 'RGB'}, seed ${seed})`);
  return 0;
}
