// A contact sheet: square images in a grid, left to right and top to bottom in the order
// given (suggest-labels: the CSV's rows), on a light background, enlarged for a person.
import { writeAtomic } from '../util/fs';
import { pngBytes } from '../data';

const GAP = 2;

export async function contactSheet(file: string, frames: Uint8Array, count: number, channels: 1 | 3, size: number): Promise<void> {
  const cols = Math.min(count, Math.ceil(Math.sqrt(count * 1.5)));
  const rows = Math.ceil(count / cols);
  const height = rows * (size + GAP) + GAP;
  const width = cols * (size + GAP) + GAP;
  const plane = height * width;
  const canvas = new Uint8Array(channels * plane).fill(235);
  const frame = channels * size * size;
  for (let k = 0; k < count; k++) {
    const top = GAP + Math.floor(k / cols) * (size + GAP);
    const left = GAP + (k % cols) * (size + GAP);
    for (let c = 0; c < channels; c++) {
      for (let y = 0; y < size; y++) {
        const from = k * frame + c * size * size + y * size;
        canvas.set(frames.subarray(from, from + size), c * plane + (top + y) * width + left);
      }
    }
  }
  // Small images are enlarged by whole pixels (about 96 px a cell) so a person can see them.
  const zoom = Math.max(1, Math.floor(96 / size));
  writeAtomic(file, await pngBytes(canvas, channels, height, width, Math.max(height, width) * zoom));
}
