// Decoding one image file (or its bytes) to its stored size: uint8 CHW planes.
import { readFile } from 'node:fs/promises';
import { storedExtent } from './stored';

export type Sharp = typeof import('sharp');

export async function loadSharp(): Promise<Sharp> {
  return (await import('sharp')).default;
}

export interface DecodedImage {
  /** uint8 [channels, height, width] */
  pixels: Uint8Array;
  height: number;
  width: number;
}

/** HWC (interleaved, as libvips gives) to CHW (planes). */
export function toPlanes(hwc: Uint8Array, channels: number, plane: number): Uint8Array {
  if (channels === 1) return new Uint8Array(hwc.buffer, hwc.byteOffset, plane).slice();
  const out = new Uint8Array(plane * channels);
  for (let c = 0; c < channels; c++) for (let p = 0, q = c; p < plane; p++, q += channels) out[c * plane + p] = hwc[q]!;
  return out;
}

/**
 * An image resized to `[height, width]` ('cover': scaled to fill, centre-cropped), alpha
 * dropped, as 1 (luma) or 3 (sRGB) channels.
 */
export async function decodeAt(sharp: Sharp, input: string | Buffer, height: number, width: number, channels: 1 | 3): Promise<DecodedImage> {
  // rotate() with no angle turns the image upright by its EXIF orientation, as a browser shows a photo.
  let img = sharp(input, { failOn: 'truncated' }).rotate().resize(width, height, { fit: 'cover', position: 'centre' }).removeAlpha();
  img = channels === 1 ? img.grayscale() : img.toColourspace('srgb');
  const raw = await img.raw().toBuffer();
  const plane = height * width;
  if (raw.length !== plane * channels) throw new Error(`decoded to ${raw.length} bytes, expected ${plane * channels}`);
  return { pixels: toPlanes(raw, channels, plane), height, width };
}

/** An image at its stored size for training size `size` (see storedExtent). */
export async function decodeStored(sharp: Sharp, input: string | Buffer, size: number, channels: 1 | 3): Promise<DecodedImage> {
  // The file read once: its header, then its pixels, from the same bytes.
  if (typeof input === 'string') input = await readFile(input);
  const meta = await sharp(input, { failOn: 'truncated' }).metadata();
  if (!meta.width || !meta.height) throw new Error('no image size in its header');
  // EXIF orientations 5-8 turn the image a quarter: its upright height is the header's width.
  const quarterTurn = (meta.orientation ?? 1) >= 5;
  const [h, w] = storedExtent(quarterTurn ? meta.width : meta.height, quarterTurn ? meta.height : meta.width, size);
  return decodeAt(sharp, input, h, w, channels);
}
