// Images as the data layer keeps them: each one a little larger than the training size
// (shorter side up to 1.15x, aspect ratio kept up to 4:3), uint8 CHW planes, so that a
// random resized crop can be taken from more of the picture than its central square.
// A batch of them is collated into one canvas (each image at the top left, its last row
// and column repeated to the canvas' edge) with each image's extent beside it.

/** The shorter side is stored at up to this many times the training size. */
export const STORE_SCALE = 1.15;
/** The longer side is kept up to this many times the shorter one (ImageNet's typical 4:3); beyond it, centre-cropped. */
export const STORE_MAX_ASPECT = 4 / 3;

/**
 * The stored height and width of an image of height x width for training size `size`: the
 * shorter side between `size` (smaller images are enlarged to it, as before) and
 * round(1.15 * size) (never enlarged beyond its own), the longer side scaled with it and
 * cropped to 4:3. An image of exactly size x size is stored as it is.
 */
export function storedExtent(height: number, width: number, size: number): [number, number] {
  const short = Math.min(height, width);
  const side = Math.min(Math.max(short, size), Math.round(STORE_SCALE * size));
  const scale = side / short;
  const long = Math.min(Math.max(side, Math.round(Math.max(height, width) * scale)), Math.round(STORE_MAX_ASPECT * side));
  return height <= width ? [side, long] : [long, side];
}

/** A batch of stored images read into one buffer: uint8 [count, channels, height, width]. */
export interface HostBatch {
  pixels: Uint8Array;
  count: number;
  channels: 1 | 3;
  height: number;
  width: number;
  /** [h0, w0, h1, w1, ...]: each image's own extent in the canvas; null when every image fills it */
  extents: Int32Array | null;
}

/** Where stored images are: in memory or in shard files on disk. */
export interface StoredImages {
  readonly count: number;
  readonly channels: 1 | 3;
  /** the training size the images were stored for */
  readonly size: number;
  /** stored height of image i */
  readonly heights: Uint16Array;
  /** stored width of image i */
  readonly widths: Uint16Array;
  /** Reads images (positions in the store) into one canvas. */
  read(indices: readonly number[]): HostBatch;
  /** Per-channel sums of every stored pixel value and of their squares, and the pixels per channel, where known without reading. */
  readonly totals?: PixelTotals;
  /** What a worker thread needs to read the same images itself; null where reading on the main thread is as cheap. */
  handle(): StoreHandle | null;
  close(): void;
}

export interface PixelTotals {
  sums: number[];
  squares: number[];
  pixels: number;
}

/** Adds image planes [channels, h*w] to running totals. */
export function addToTotals(t: PixelTotals, planes: Uint8Array, channels: number): void {
  const plane = planes.length / channels;
  for (let c = 0; c < channels; c++) {
    let s = 0;
    let q = 0;
    for (let p = c * plane, end = p + plane; p < end; p++) {
      const v = planes[p]!;
      s += v;
      q += v * v;
    }
    t.sums[c]! += s;
    t.squares[c]! += q;
  }
  t.pixels += plane;
}

/** A shard store as a worker thread opens it (structured-cloneable). */
export interface StoreHandle {
  channels: 1 | 3;
  size: number;
  /** shard data files */
  files: string[];
  shard: Int32Array;
  offset: Float64Array;
  heights: Uint16Array;
  widths: Uint16Array;
}

/**
 * Copies image k (planes [channels, h, w] in `src`) into the canvas at slot k, repeating its
 * last column and row to the canvas' width and height (so that sampling near its edge reads
 * what border padding would).
 */
export function placeInCanvas(out: Uint8Array, k: number, src: Uint8Array, channels: number, h: number, w: number, height: number, width: number): void {
  const plane = height * width;
  for (let c = 0; c < channels; c++) {
    const base = (k * channels + c) * plane;
    const from = c * h * w;
    for (let y = 0; y < h; y++) {
      const row = base + y * width;
      out.set(src.subarray(from + y * w, from + (y + 1) * w), row);
      if (w < width) out.fill(src[from + y * w + w - 1]!, row + w, row + width);
    }
    const last = base + (h - 1) * width;
    for (let y = h; y < height; y++) out.copyWithin(base + y * width, last, last + width);
  }
}

/** The canvas for a batch: the largest stored height and width among the images, and whether any is smaller. */
export function canvasFor(heights: Uint16Array, widths: Uint16Array, indices: readonly number[]): { height: number; width: number; ragged: boolean } {
  let height = 0;
  let width = 0;
  for (const i of indices) {
    height = Math.max(height, heights[i]!);
    width = Math.max(width, widths[i]!);
  }
  let ragged = false;
  for (const i of indices) if (heights[i] !== height || widths[i] !== width) ragged = true;
  return { height, width, ragged };
}

/** Allocates the canvas and extents of a batch and calls `fill(k, i, into)` to read each image's planes. */
export function collate(
  store: { channels: 1 | 3; heights: Uint16Array; widths: Uint16Array },
  indices: readonly number[],
  readImage: (i: number, into: Uint8Array) => void,
): HostBatch {
  const { height, width, ragged } = canvasFor(store.heights, store.widths, indices);
  const c = store.channels;
  const pixels = new Uint8Array(indices.length * c * height * width);
  const extents = ragged ? new Int32Array(indices.length * 2) : null;
  let scratch = new Uint8Array(0);
  indices.forEach((i, k) => {
    const h = store.heights[i]!;
    const w = store.widths[i]!;
    if (extents) {
      extents[2 * k] = h;
      extents[2 * k + 1] = w;
    }
    if (h === height && w === width) {
      readImage(i, pixels.subarray(k * c * h * w, (k + 1) * c * h * w));
      return;
    }
    if (scratch.length < c * h * w) scratch = new Uint8Array(c * height * width);
    const src = scratch.subarray(0, c * h * w);
    readImage(i, src);
    placeInCanvas(pixels, k, src, c, h, w, height, width);
  });
  return { pixels, count: indices.length, channels: c, height, width, extents };
}
