// A grid of images beside pairs of their SimCLR views (rows: original | view 1 | view 2),
// zoomed for a person to see: `simclr views` writes it as a PNG, the report shows it.
import * as t from '../torch';
import type { Tensor } from '../torch';
import { centerCropResize, simclrViews, type Extents, type ViewOptions } from './views';

export interface ImageGrid {
  /** uint8 planes [channels, height, width] */
  chw: Uint8Array;
  channels: 1 | 3;
  height: number;
  width: number;
}

/** `count` uint8 images [count, channels, size, size] and two views of each; draws from libtorch's generator. */
export function viewsGrid(pixels: Uint8Array, count: number, channels: 1 | 3, size: number, views: ViewOptions, zoom: number): ImageGrid {
  return t.tidy(() => viewsGridOf(t.fromBytes(pixels.subarray(0, count * channels * size * size), [count, channels, size, size], 'uint8'), size, views, zoom));
}

/**
 * The same from uint8 images as training reads them: with `extents`, each image is stored
 * at its own size on a larger canvas; the views crop from that, the original column shows
 * its centre square.
 */
export function viewsGridOf(images: Tensor, size: number, views: ViewOptions, zoom: number, extents: Extents = null): ImageGrid {
  const count = images.shape[0]!;
  const channels = images.shape[1] as 1 | 3;
  const grid = t.tidy(() => {
    const [v1, v2] = simclrViews(images, views, undefined, extents);
    const original = centerCropResize(images, size, 1, extents);
    // A white gap of 2 pixels between the columns and after each row.
    const gap = t.ones([count, channels, size, 2], { device: original.device });
    const row = t.cat([original, gap, v1, gap, v2], 3);
    const big = t.F.interpolate(row, [size * zoom, row.shape[3]! * zoom], { mode: 'nearest' });
    const hgap = t.ones([count, channels, 2 * zoom, row.shape[3]! * zoom], { device: big.device });
    const stacked = t.cat([big, hgap], 2).permute(1, 0, 2, 3).reshape(channels, -1, row.shape[3]! * zoom);
    return stacked.mul(255).round().clamp(0, 255).to('uint8').contiguous();
  });
  const [, height, width] = grid.shape as [number, number, number];
  const chw = Uint8Array.from(grid.data() as Uint8Array);
  grid.dispose();
  return { chw, channels, height, width };
}
