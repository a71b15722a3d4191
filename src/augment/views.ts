// SimCLR's augmentations as batched tensor operations: every parameter is drawn per image
// from libtorch's seeded generator, and every step works on the whole batch on its device.
import * as t from '../torch';
import type { Tensor } from '../torch';
import { isSmallImage } from './small';

export interface CropOptions {
  /** Fraction of the image area kept. Default [0.08, 1]. */
  scale?: [number, number];
  /** Aspect ratio (w/h) range. Default [3/4, 4/3]. */
  ratio?: [number, number];
  /**
   * Whole-pixel boxes (sides rounded, integer origin), as torchvision and the official TF
   * code draw them: a full-width crop is then an exact copy, not a resampled one. Default
   * false: fractional boxes, a random sub-pixel shift in every view, which gave the better
   * pretrained and fine-tuned models here; the supervised baseline is better with whole
   * pixels (bench/parity-results.md).
   */
  pixelAligned?: boolean;
}

export interface JitterOptions {
  /** Colour distortion strength s: brightness, contrast, saturation 0.8s, hue 0.2s. Default 1 (0.5 for CIFAR). */
  strength?: number;
  /** Probability of jittering an image. Default 0.8. */
  prob?: number;
}

export interface BlurOptions {
  /** Default 0.5, and 0 for images of 32x32 or less. */
  prob?: number;
  /** Sigma range. Default [0.1, 2]. */
  sigma?: [number, number];
}

export interface ViewOptions {
  /** Output side in pixels. */
  size: number;
  /** Random resized crop; false keeps the whole image (resized). */
  crop?: CropOptions | false;
  flipProb?: number;
  jitter?: JitterOptions | false;
  grayscaleProb?: number;
  blur?: BlurOptions | false;
  /** Resampling of the crop. Default 'bicubic', as the official code. */
  interpolation?: 'bilinear' | 'bicubic';
}

/** The per-image random choices behind a batch of views. */
export interface ViewParams {
  /** [N, 4]: crop box as (x0, y0, w, h), fractions of the image */
  box: Tensor;
  /** [N] bool */
  flip: Tensor;
  /** [N] bool */
  jitter: Tensor;
  /** [N, 4]: brightness, contrast, saturation factors and hue shift (identity where no jitter) */
  colour: Tensor;
  /** [N, 4] int64: the order of the four jitter ops for each image */
  order: Tensor;
  /** [N] bool */
  gray: Tensor;
  /** [N] bool */
  blur: Tensor;
  /** [N]: blur sigma */
  sigma: Tensor;
}


/** The paper's defaults for an image size (jitter strength 0.5 and no blur at 32x32 or less). */
export function simclrViewOptions(size: number, overrides: Partial<ViewOptions> = {}): ViewOptions {
  const small = isSmallImage(size);
  return {
    size,
    crop: { scale: [0.08, 1], ratio: [3 / 4, 4 / 3], pixelAligned: false },
    flipProb: 0.5,
    jitter: { strength: small ? 0.5 : 1, prob: 0.8 },
    grayscaleProb: 0.2,
    blur: small ? false : { prob: 0.5, sigma: [0.1, 2] },
    interpolation: 'bicubic',
    ...overrides,
  };
}

/** The fine-tuning transform: random resized crop and flip, no colour changes. */
export function fineTuneViewOptions(size: number): ViewOptions {
  return { ...simclrViewOptions(size), jitter: false, grayscaleProb: 0, blur: false };
}

/** The blur settings in force: unset means on above 32x32 and off at 32x32 or less. */
function blurSettings(o: ViewOptions): BlurOptions | false {
  return o.blur === undefined ? (isSmallImage(o.size) ? false : {}) : o.blur;
}

/**
 * Where the view parameters' uniform numbers come from: [n] or [n, k] of them in [0, 1),
 * row i for image i. streamRandom draws them from libtorch's seeded generator, in batch
 * order; keyedRandom makes each image's numbers a function of (seed, epoch, view, image
 * index) alone, so an image gets the same views whichever batch or worker it lands in.
 */
export interface ViewRandom {
  uniform(shape: [number] | [number, number], device: string): Tensor;
}

export const streamRandom: ViewRandom = { uniform: (shape, device) => t.rand(shape, { device }) };

/** The key of a batch's views: the run's seed, the epoch and each image's index in the data set. */
export interface ViewKey {
  seed: number;
  epoch: number;
  /** data-set positions of the batch's images, in batch order */
  indices: readonly number[];
}

// A 32-bit mixing step (MurmurHash3's finaliser over a running hash).
function mix(h: number, v: number): number {
  h = Math.imul((h ^ v) >>> 0, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Counter-based numbers: the c-th draw's element (i, j) hashes (seed, epoch, view, indices[i], c, j). */
export function keyedRandom(key: ViewKey, view: number): ViewRandom {
  const base = mix(mix(mix(0x9e3779b9, key.seed >>> 0), key.epoch >>> 0), view >>> 0);
  const rows = key.indices.map((index) => mix(mix(base, index >>> 0), Math.floor(index / 4294967296)));
  let draw = 0;
  return {
    uniform: (shape, device) => {
      const [n, k = 1] = shape;
      if (n !== rows.length) throw new Error(`keyedRandom: ${n} rows asked for, but the key has ${rows.length} images`);
      const c = draw++;
      const out = new Float32Array(n * k);
      for (let i = 0; i < n; i++) {
        const h = mix(rows[i]!, c);
        for (let j = 0; j < k; j++) out[i * k + j] = (mix(h, j) >>> 8) / 16777216;
      }
      return t.tensor(out, [...shape], { device });
    },
  };
}

const uniform = (r: ViewRandom, n: number, low: number, high: number, device: string): Tensor => t.tidy(() => r.uniform([n], device).mul(high - low).add(low));
const coin = (r: ViewRandom, n: number, p: number, device: string): Tensor => t.tidy(() => r.uniform([n], device).lt(p));

/**
 * Images of different sizes in one batch: [h0, w0, h1, w1, ...], each image's own extent at
 * the top left of the batch's canvas (the rest repeats its last row and column). Crop boxes
 * are drawn and expressed in each image's own extent. null: every image fills the canvas.
 */
export type Extents = Int32Array | null;

/** Per-image heights and widths [n, 1] as float tensors. */
function extentTensors(extents: Int32Array, device: string): { h: Tensor; w: Tensor } {
  const n = extents.length / 2;
  const h = Float32Array.from({ length: n }, (_, i) => extents[2 * i]!);
  const w = Float32Array.from({ length: n }, (_, i) => extents[2 * i + 1]!);
  return { h: t.tensor(h, [n, 1], { device }), w: t.tensor(w, [n, 1], { device }) };
}

/**
 * Draws the per-image parameters for n images of height x width (from `random`, default
 * libtorch's generator); with extents, each image's crop is drawn for its own extent.
 */
export function sampleViewParams(n: number, height: number, width: number, o: ViewOptions, device = 'cpu', random: ViewRandom = streamRandom, extents: Extents = null): ViewParams {
  return t.tidy(() => {
    const r = random;
    const sides = extents ? extentTensors(extents, device) : null;
    const box = o.crop === false ? t.tensor([[0, 0, 1, 1]], undefined, { device }).expand(n, 4).contiguous() : sides ? sampleCropsIn(r, n, sides, o.crop ?? {}, device) : sampleCrops(r, n, height, width, o.crop ?? {}, device);
    const flip = coin(r, n, o.flipProb ?? 0.5, device);
    const { jitter, colour, order } = sampleJitter(r, n, o.jitter === undefined ? {} : o.jitter, device);
    const gray = coin(r, n, o.grayscaleProb ?? 0.2, device);
    const blurOpts = blurSettings(o);
    const blur = coin(r, n, blurOpts === false ? 0 : (blurOpts.prob ?? 0.5), device);
    const [s0, s1] = blurOpts === false ? [0.1, 2] : (blurOpts.sigma ?? [0.1, 2]);
    const sigma = uniform(r, n, s0, s1, device);
    return { box, flip, jitter, colour, order, gray, blur, sigma };
  });
}

// Random resized crop as torchvision draws it: up to 10 tries of (area, log-ratio) per image;
// the first that fits wins, else a centre crop at the nearest allowed ratio.
function sampleCrops(r: ViewRandom, n: number, height: number, width: number, o: CropOptions, device: string): Tensor {
  const [a0, a1] = o.scale ?? [0.08, 1];
  const [r0, r1] = o.ratio ?? [3 / 4, 4 / 3];
  const tries = 10;
  const aspect = width / height;
  const area = r.uniform([n, tries], device).mul(a1 - a0).add(a0);
  const ratio = r.uniform([n, tries], device).mul(Math.log(r1) - Math.log(r0)).add(Math.log(r0)).exp();
  const pixelAligned = o.pixelAligned ?? false;
  // Whole pixels: sides rounded, and a side rounded to 0 does not fit (as torchvision).
  const toPixels = (fraction: Tensor, pixels: number): Tensor => (pixelAligned ? fraction.mul(pixels).round().div(pixels) : fraction);
  const w = toPixels(area.mul(ratio).div(aspect).sqrt(), width);
  const h = toPixels(area.div(ratio).mul(aspect).sqrt(), height);
  const inside = w.le(1).logicalAnd(h.le(1));
  const fits = (pixelAligned ? inside.logicalAnd(w.gt(0)).logicalAnd(h.gt(0)) : inside).to('float32');
  const first = fits.argmax(1, true);
  const any = fits.amax(1, false).gt(0.5);
  let fw = 1;
  let fh = 1;
  if (aspect < r0) fh = aspect / r0;
  else if (aspect > r1) fw = r1 / aspect;
  const cw = t.where(any, w.gather(1, first).squeeze(1), t.full([n], fw, { device }));
  const ch = t.where(any, h.gather(1, first).squeeze(1), t.full([n], fh, { device }));
  // Whole pixels: an integer origin in 0..(side - crop), each equally likely.
  const origin = (crop: Tensor, side: number): Tensor => {
    const u = r.uniform([n], device);
    return pixelAligned ? u.mul(crop.rsub(1).mul(side).add(1)).floor().div(side) : u.mul(crop.rsub(1));
  };
  const x0 = origin(cw, width);
  const y0 = origin(ch, height);
  return t.stack([x0, y0, cw, ch], 1);
}

// The same draw as sampleCrops, for images each of their own height and width ([n, 1] tensors).
function sampleCropsIn(r: ViewRandom, n: number, sides: { h: Tensor; w: Tensor }, o: CropOptions, device: string): Tensor {
  const [a0, a1] = o.scale ?? [0.08, 1];
  const [r0, r1] = o.ratio ?? [3 / 4, 4 / 3];
  const tries = 10;
  const aspect = sides.w.div(sides.h);
  const area = r.uniform([n, tries], device).mul(a1 - a0).add(a0);
  const ratio = r.uniform([n, tries], device).mul(Math.log(r1) - Math.log(r0)).add(Math.log(r0)).exp();
  const pixelAligned = o.pixelAligned ?? false;
  const toPixels = (fraction: Tensor, pixels: Tensor): Tensor => (pixelAligned ? fraction.mul(pixels).round().div(pixels) : fraction);
  const w = toPixels(area.mul(ratio).div(aspect).sqrt(), sides.w);
  const h = toPixels(area.div(ratio).mul(aspect).sqrt(), sides.h);
  const inside = w.le(1).logicalAnd(h.le(1));
  const fits = (pixelAligned ? inside.logicalAnd(w.gt(0)).logicalAnd(h.gt(0)) : inside).to('float32');
  const first = fits.argmax(1, true);
  const any = fits.amax(1, false).gt(0.5);
  const one = t.onesLike(aspect);
  const fh = t.where(aspect.lt(r0), aspect.div(r0), one).squeeze(1);
  const fw = t.where(aspect.gt(r1), t.fullLike(aspect, r1).div(aspect), one).squeeze(1);
  const cw = t.where(any, w.gather(1, first).squeeze(1), fw);
  const ch = t.where(any, h.gather(1, first).squeeze(1), fh);
  const origin = (crop: Tensor, side: Tensor): Tensor => {
    const u = r.uniform([n], device);
    return pixelAligned ? u.mul(crop.rsub(1).mul(side).add(1)).floor().div(side) : u.mul(crop.rsub(1));
  };
  const x0 = origin(cw, sides.w.squeeze(1));
  const y0 = origin(ch, sides.h.squeeze(1));
  return t.stack([x0, y0, cw, ch], 1);
}

function sampleJitter(r: ViewRandom, n: number, o: JitterOptions | false, device: string): { jitter: Tensor; colour: Tensor; order: Tensor } {
  const s = o === false ? 0 : (o.strength ?? 1);
  const jitter = coin(r, n, o === false ? 0 : (o.prob ?? 0.8), device);
  const factor = (): Tensor => uniform(r, n, Math.max(0, 1 - 0.8 * s), 1 + 0.8 * s, device);
  const drawn = t.stack([factor(), factor(), factor(), uniform(r, n, -0.2 * s, 0.2 * s, device)], 1);
  const identity = t.tensor([[1, 1, 1, 0]], undefined, { device });
  const colour = t.where(jitter.unsqueeze(1), drawn, identity);
  const order = r.uniform([n, 4], device).sort(1).indices;
  return { jitter, colour, order };
}

/** One SimCLR view of each image: float [N, C, size, size] in [0, 1]. Input: uint8 or float in [0, 1]. */
export function simclrView(images: Tensor, o: ViewOptions, random: ViewRandom = streamRandom, extents: Extents = null): Tensor {
  return t.tidy(() => {
    const [n, , h, w] = images.shape as [number, number, number, number];
    const params = sampleViewParams(n, h, w, o, images.device, random, extents);
    return applyView(images, params, o, extents);
  });
}

/**
 * Two independent views of each image, as the pretraining step needs. With a key, each
 * image's views depend on (seed, epoch, image index) only, not on the batch it is in.
 */
export function simclrViews(images: Tensor, o: ViewOptions, key?: ViewKey, extents: Extents = null): [Tensor, Tensor] {
  return t.tidy(() => {
    const x = toUnit(images);
    return [simclrView(x, o, key ? keyedRandom(key, 0) : streamRandom, extents), simclrView(x, o, key ? keyedRandom(key, 1) : streamRandom, extents)];
  });
}

/** uint8 pixels to float32 in [0, 1]; float input is taken as already there. */
export function toUnit(images: Tensor): Tensor {
  return images.dtype === 'uint8' ? images.to('float32').div(255) : images;
}

/**
 * Elements of one view tensor that the augmentation works on at a time. Each stage (crop,
 * the colour-space steps of jitter, blur) makes a few tensors the size of its input; on a
 * whole batch of large images those come to gigabytes (64 images at 256 px: 1.9 GB), so
 * larger batches are augmented a slice of images at a time. Every op is per image, so the
 * slices give what the whole batch would.
 */
export const VIEW_SLICE_ELEMENTS = 1 << 20;

/** Applies drawn parameters: crop + flip, colour jitter in each image's order, grayscale, blur. */
export function applyView(images: Tensor, p: ViewParams, o: ViewOptions, extents: Extents = null): Tensor {
  const n = images.shape[0]!;
  const per = Math.max(1, Math.floor(VIEW_SLICE_ELEMENTS / (images.shape[1]! * o.size * o.size)));
  if (n <= per) return applyViewAll(images, p, o, extents);
  return t.tidy(() => {
    const parts: Tensor[] = [];
    for (let start = 0; start < n; start += per) {
      const len = Math.min(per, n - start);
      const part = Object.fromEntries(Object.entries(p).map(([name, v]) => [name, (v as Tensor).narrow(0, start, len)])) as unknown as ViewParams;
      parts.push(t.tidy(() => applyViewAll(images.narrow(0, start, len), part, o, extents ? extents.subarray(2 * start, 2 * (start + len)) : null)));
    }
    return t.cat(parts);
  });
}

function applyViewAll(images: Tensor, p: ViewParams, o: ViewOptions, extents: Extents): Tensor {
  return t.tidy(() => {
    const unit = toUnit(images);
    let x = cropResize(unit, inCanvas(p.box, extents, unit), p.flip, o.size, o.interpolation ?? 'bicubic');
    if (o.jitter !== false) x = colourJitter(x, p.colour, p.order);
    if ((o.grayscaleProb ?? 0.2) > 0 && x.shape[1] === 3) x = t.where(p.gray.reshape(-1, 1, 1, 1), grayscale(x).expand(x.shape), x);
    if (blurSettings(o) !== false) x = gaussianBlur(x, p.blur, p.sigma);
    return x;
  });
}

/** Boxes in each image's own extent as fractions of the canvas (unchanged without extents). */
function inCanvas(box: Tensor, extents: Extents, canvas: Tensor): Tensor {
  if (!extents) return box;
  const [, , height, width] = canvas.shape as [number, number, number, number];
  const { h, w } = extentTensors(extents, box.device);
  const fx = w.div(width);
  const fy = h.div(height);
  return box.mul(t.cat([fx, fy, fx, fy], 1));
}

/** Crops box (x0, y0, w, h) of every image, flips where asked, resizes to size x size. */
function cropResize(x: Tensor, box: Tensor, flip: Tensor, size: number, mode: 'bilinear' | 'bicubic'): Tensor {
  const n = x.shape[0]!;
  const [x0, y0, w, h] = box.chunk(4, 1).map((c) => c.squeeze(1));
  // affine_grid maps output coords in [-1, 1] to input coords: x_in = sx * u + tx.
  const sign = t.where(flip, t.fullLike(w, -1), t.onesLike(w));
  const sx = w!.mul(sign);
  const tx = x0!.mul(2).add(w!).sub(1);
  const sy = h!;
  const ty = y0!.mul(2).add(h!).sub(1);
  const zero = t.zerosLike(sx);
  const theta = t.stack([sx, zero, tx, zero, sy, ty], 1).reshape(n, 2, 3);
  const grid = t.F.affineGrid(theta.to(x.dtype), [n, x.shape[1]!, size, size], false);
  const out = t.F.gridSample(x, grid, { mode, paddingMode: 'border', alignCorners: false });
  return mode === 'bicubic' ? out.clamp(0, 1) : out;
}

const LUMA = [0.299, 0.587, 0.114];

/** ITU-R 601 luma, [N, 1, H, W]. */
export function grayscale(x: Tensor): Tensor {
  if (x.shape[1] === 1) return x;
  return t.tidy(() => {
    const weights = t.tensor(LUMA, undefined, { device: x.device }).to(x.dtype).reshape(1, 3, 1, 1);
    return x.mul(weights).sum(1, true);
  });
}

const perImage = (v: Tensor): Tensor => v.reshape(-1, 1, 1, 1);

/** blend(a, b, r) = r * a + (1 - r) * b, clipped to [0, 1] as torchvision does after every op. */
function blend(a: Tensor, b: Tensor, ratio: Tensor): Tensor {
  const r = perImage(ratio);
  return a.mul(r).add(b.mul(r.rsub(1))).clamp(0, 1);
}

/** Brightness, contrast, saturation, hue, each image in its own order. */
function colourJitter(x: Tensor, colour: Tensor, order: Tensor): Tensor {
  return x.device === 'cpu' ? colourJitterBySubset(x, colour, order) : colourJitterMasked(x, colour, order);
}

const IDENTITY = [1, 1, 1, 0];

/** One jitter op (0 brightness, 1 contrast, 2 saturation, 3 hue) with per-image values. */
function jitterOp(k: number, x: Tensor, value: Tensor): Tensor {
  switch (k) {
    case 0:
      return blend(x, t.zerosLike(x), value);
    case 1:
      return blend(x, grayscale(x).mean([1, 2, 3], true), value);
    case 2:
      return blend(x, grayscale(x), value);
    default:
      return shiftHue(x, value);
  }
}

/**
 * On the CPU: at each position, each op runs only on the images that apply it there (a
 * quarter of them, fewer where jitter is off), instead of every op on every image with
 * identity values: the same numbers for about a quarter of the work. Reads the drawn
 * values on the host, so GPU batches take the masked path instead.
 */
export function colourJitterBySubset(x: Tensor, colour: Tensor, order: Tensor): Tensor {
  const n = x.shape[0]!;
  const ops = x.shape[1] === 3 ? 4 : 2;
  const values = colour.toArray();
  const orders = order.toArray();
  let out = x;
  for (let position = 0; position < 4; position++) {
    // One scope a position: its pieces are freed once merged, so the working set stays small.
    const before = out;
    out = t.tidy(() => {
      const pieces: Tensor[] = [before];
      const source = Array.from({ length: n }, (_, i) => i);
      let offset = n;
      for (let k = 0; k < ops; k++) {
        const ids: number[] = [];
        for (let i = 0; i < n; i++) if (orders[i * 4 + position] === k && values[i * 4 + k] !== IDENTITY[k]) ids.push(i);
        if (ids.length === 0) continue;
        const index = t.tensor(ids, undefined, { dtype: 'int64', device: before.device });
        pieces.push(t.tidy(() => jitterOp(k, before.indexSelect(0, index), colour.select(1, k).indexSelect(0, index))));
        ids.forEach((i, j) => (source[i] = offset + j));
        offset += ids.length;
      }
      return pieces.length > 1 ? t.cat(pieces, 0).indexSelect(0, t.tensor(source, undefined, { dtype: 'int64', device: before.device })) : before;
    });
    if (before !== x && before !== out) before.dispose();
  }
  return out;
}

/** Every op on every image at every position, identity values where an image skips it. */
export function colourJitterMasked(x: Tensor, colour: Tensor, order: Tensor): Tensor {
  const channels = x.shape[1]!;
  const [b, c, s, hue] = colour.chunk(4, 1).map((v) => v.squeeze(1));
  let out = x;
  for (let position = 0; position < 4; position++) {
    const at = order.select(1, position);
    // Each image runs exactly one op at each position; the others see identity parameters.
    const pick = (k: number, value: Tensor, identity: number): Tensor => t.where(at.eq(k), value, t.fullLike(value, identity));
    out = blend(out, t.zerosLike(out), pick(0, b!, 1));
    const mean = grayscale(out).mean([1, 2, 3], true);
    out = blend(out, mean, pick(1, c!, 1));
    if (channels === 3) {
      out = blend(out, grayscale(out), pick(2, s!, 1));
      const hueHere = at.eq(3).logicalAnd(hue!.ne(0));
      out = t.where(perImage(hueHere), shiftHue(out, hue!), out);
    }
  }
  return out;
}

/** Rotates hue by shift (fractions of a turn) through HSV, per image. */
export function shiftHue(x: Tensor, shift: Tensor): Tensor {
  return t.tidy(() => {
    const maxc = x.amax(1, true);
    // Inner scopes free each step's temporaries as soon as it is done: the working set of a
    // batch of small images then stays in the cache (all of them alive at once ran 2x slower).
    const { h, sat } = t.tidy(() => {
      const [r, g, b] = x.chunk(3, 1);
      const minc = x.amin(1, true);
      const flat = maxc.eq(minc);
      const range = maxc.sub(minc);
      const one = t.onesLike(maxc);
      const sat = range.div(t.where(flat, one, maxc));
      const divisor = t.where(flat, one, range);
      const rc = maxc.sub(r!).div(divisor);
      const gc = maxc.sub(g!).div(divisor);
      const bc = maxc.sub(b!).div(divisor);
      const isR = maxc.eq(r!);
      const isG = maxc.eq(g!).logicalAnd(isR.logicalNot());
      const isB = isR.logicalNot().logicalAnd(isG.logicalNot());
      const hr = bc.sub(gc).mul(isR.to(x.dtype));
      const hg = rc.sub(bc).add(2).mul(isG.to(x.dtype));
      const hb = gc.sub(rc).add(4).mul(isB.to(x.dtype));
      return { h: hr.add(hg).add(hb).div(6).add(1).add(perImage(shift)).remainder(1), sat };
    });
    return hsvToRgb(h, sat, maxc);
  });
}

function hsvToRgb(h: Tensor, s: Tensor, v: Tensor): Tensor {
  return t.tidy(() => {
    const { i, p, q, u } = t.tidy(() => {
      const h6 = h.mul(6);
      const sector = h6.floor();
      const f = h6.sub(sector);
      return {
        i: sector.remainder(6),
        p: v.mul(s.rsub(1)).clamp(0, 1),
        q: v.mul(s.mul(f).rsub(1)).clamp(0, 1),
        u: v.mul(s.mul(f.rsub(1)).rsub(1)).clamp(0, 1),
      };
    });
    // (r, g, b) for sectors 0..5: (v,u,p) (q,v,p) (p,v,u) (p,q,v) (u,p,v) (v,p,q)
    const table: [Tensor, Tensor, Tensor][] = [
      [v, u, p],
      [q, v, p],
      [p, v, u],
      [p, q, v],
      [u, p, v],
      [v, p, q],
    ];
    const sectors = [0, 1, 2, 3, 4].map((k) => i.eq(k)); // shared by the three channels
    const channel = (c: 0 | 1 | 2): Tensor => {
      let out = table[5]![c];
      for (let k = 4; k >= 0; k--) {
        const next = t.where(sectors[k]!, table[k]![c], out);
        if (k < 4) out.dispose(); // the previous step's result, never a table entry
        out = next;
      }
      return out;
    };
    return t.cat([channel(0), channel(1), channel(2)], 1);
  });
}

/**
 * Gaussian blur with a per-image sigma (kernel side = image side / 10, odd), zero padding,
 * run only on the images that draw it (half of them: the work halves, as for the jitter).
 */
function gaussianBlur(x: Tensor, on: Tensor, sigma: Tensor): Tensor {
  const [n, , h] = x.shape as [number, number, number, number];
  const radius = Math.floor(Math.floor(h / 10) / 2);
  if (radius < 1) return x;
  const drawn = on.toArray();
  const picked: number[] = [];
  const source: number[] = [];
  for (let i = 0; i < n; i++) source.push(drawn[i] ? n + picked.push(i) - 1 : i);
  if (picked.length === 0) return x;
  if (picked.length === n) return blurEach(x, sigma, radius);
  const index = t.tensor(picked, undefined, { dtype: 'int64', device: x.device });
  const blurred = blurEach(x.indexSelect(0, index), sigma.indexSelect(0, index), radius);
  return t.cat([x, blurred], 0).indexSelect(0, t.tensor(source, undefined, { dtype: 'int64', device: x.device }));
}

/** Every image blurred with its own sigma: two depthwise 1-d convolutions. */
function blurEach(x: Tensor, sigma: Tensor, radius: number): Tensor {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const k = 2 * radius + 1;
  const offsets = t.arange(-radius, radius + 1, 1, { dtype: x.dtype, device: x.device }).reshape(1, k);
  const s = sigma.to(x.dtype).reshape(n, 1);
  const kernel = offsets.pow(2).div(s.pow(2).mul(-2)).exp();
  const weights = kernel.div(kernel.sum(1, true));
  const perChannel = weights.unsqueeze(1).expand(n, c, k).reshape(n * c, 1, k);
  const flat = x.reshape(1, n * c, h, w);
  const vertical = t.F.conv2d(flat, perChannel.unsqueeze(3), null, { padding: [radius, 0], groups: n * c });
  const both = t.F.conv2d(vertical, perChannel.unsqueeze(2), null, { padding: [0, radius], groups: n * c });
  return both.reshape(n, c, h, w);
}

/**
 * Evaluation transform: centre crop of cropFraction of the shorter side (0.875 above
 * 32x32 as the official code, the whole image at 32x32 or less), resized to size.
 */
export function centerCropResize(images: Tensor, size: number, cropFraction?: number, extents: Extents = null): Tensor {
  return t.tidy(() => {
    const x = toUnit(images);
    const [n, , h, w] = x.shape as [number, number, number, number];
    if (extents) {
      // Each image's own centre square (of side min(h, w) * frac), located in the canvas.
      const frac = cropFraction ?? (isSmallImage(size) ? 1 : 0.875);
      const rows: number[] = [];
      for (let i = 0; i < n; i++) {
        const [ih, iw] = [extents[2 * i]!, extents[2 * i + 1]!];
        const side = Math.min(ih, iw) * frac;
        rows.push((iw - side) / 2 / w, (ih - side) / 2 / h, side / w, side / h);
      }
      return cropResize(x, t.tensor(Float32Array.from(rows), [n, 4], { device: x.device }), t.zeros([n], { dtype: 'bool', device: x.device }), size, 'bicubic');
    }
    // Small images are seen whole: decided by the training size (a stored image may be a little larger).
    const frac = cropFraction ?? (isSmallImage(size) ? 1 : 0.875);
    const side = Math.min(h, w) * frac;
    const box = t.tensor([[(1 - side / w) / 2, (1 - side / h) / 2, side / w, side / h]], undefined, { device: x.device }).expand(n, 4).contiguous();
    if (side === h && side === w && h === size) return x.clone();
    return cropResize(x, box, t.zeros([n], { dtype: 'bool', device: x.device }), size, 'bicubic');
  });
}
