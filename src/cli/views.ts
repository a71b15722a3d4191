// `simclr views`: a grid of images beside pairs of their SimCLR views, to see what the
// augmentations do.
import * as t from '../torch';
import { simclrViewOptions, simclrViews } from '../augment';
import { decodeImages, listImages, seededRandom, writePng } from '../data';
import type { Flags } from './args';
import { UsageError } from './args';

export async function viewsCommand(flags: Flags): Promise<number> {
  const dir = flags.string('data', '');
  const out = flags.string('out', 'views.png');
  const count = flags.number('count', 8, { min: 1, max: 64, integer: true });
  const size = flags.number('size', 32, { min: 8, max: 512, integer: true });
  const seed = flags.number('seed', 0, { min: 0, integer: true });
  const channels = flags.number('channels', 3, { integer: true });
  const zoom = flags.number('zoom', size <= 64 ? 4 : 1, { min: 1, max: 16, integer: true });
  flags.rejectUnknown();
  if (!dir) throw new UsageError('--data <image folder> is required, e.g. simclr views --data ../shared/datasets/cifar10/train --out views.png');
  if (channels !== 1 && channels !== 3) throw new UsageError(`--channels must be 1 or 3, got ${channels}`);

  const list = listImages(dir);
  const pick = seededRandom(seed);
  const chosen = Array.from({ length: Math.min(count, list.files.length) }, () => list.files[Math.floor(pick() * list.files.length)]!);
  const { pixels } = await decodeImages(chosen, size, channels);
  t.manualSeed(seed);
  const grid = t.tidy(() => {
    const images = t.fromBytes(pixels, [chosen.length, channels, size, size], 'uint8');
    const [v1, v2] = simclrViews(images, simclrViewOptions(size));
    const original = images.to('float32').div(255);
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
  console.log(`wrote ${out}: ${chosen.length} images from ${dir} (columns: original, view 1, view 2; ${size}px, seed ${seed})`);
  return 0;
}
