// Image folders: DIR/<class>/*.{jpg,jpeg,png,webp} (labeled) or DIR/*.{...} (unlabeled),
// decoded with sharp to uint8 CHW at one size.
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';

export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp']);

export interface ImageList {
  files: string[];
  /** class index per file; -1 when the folder has no class subfolders */
  labels: number[];
  classes: string[];
  /** files that are not images, ignored */
  skipped: number;
}

export function listImages(dir: string): ImageList {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch (e) {
    throw new Error(`${dir}: cannot read the image folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const classes = entries.filter((e) => statSync(join(dir, e)).isDirectory());
  const out: ImageList = { files: [], labels: [], classes, skipped: 0 };
  const take = (folder: string, label: number): void => {
    for (const name of readdirSync(folder).sort()) {
      const path = join(folder, name);
      if (!statSync(path).isFile()) continue;
      if (IMAGE_EXTENSIONS.has(extname(name).toLowerCase())) {
        out.files.push(path);
        out.labels.push(label);
      } else out.skipped++;
    }
  };
  if (classes.length > 0) classes.forEach((c, i) => take(join(dir, c), i));
  else take(dir, -1);
  if (out.files.length === 0) throw new Error(`${dir}: no images found (looked for ${[...IMAGE_EXTENSIONS].join(', ')} files, in class subfolders or the folder itself)`);
  return out;
}

/** Decodes files into one uint8 array [N, channels, size, size]: shorter side resized to size, centre-cropped. */
export async function decodeImages(files: string[], size: number, channels: 1 | 3): Promise<Uint8Array> {
  const sharp = (await import('sharp')).default;
  const plane = size * size;
  const out = new Uint8Array(files.length * channels * plane);
  await Promise.all(
    files.map(async (file, i) => {
      let pixels: Buffer;
      try {
        let img = sharp(file).resize(size, size, { fit: 'cover', position: 'centre' }).removeAlpha();
        img = channels === 1 ? img.grayscale() : img.toColourspace('srgb');
        pixels = await img.raw().toBuffer();
      } catch (e) {
        throw new Error(`${file}: cannot decode the image (${(e as Error).message})`);
      }
      const base = i * channels * plane;
      // HWC (interleaved) to CHW (planes)
      for (let p = 0; p < plane; p++) for (let c = 0; c < channels; c++) out[base + c * plane + p] = pixels[p * channels + c]!;
    }),
  );
  return out;
}

/** Writes uint8 CHW planes [channels, height, width] as a PNG. */
export async function writePng(file: string, chw: Uint8Array, channels: 1 | 3, height: number, width: number): Promise<void> {
  const sharp = (await import('sharp')).default;
  const hwc = Buffer.alloc(chw.length);
  const plane = height * width;
  for (let p = 0; p < plane; p++) for (let c = 0; c < channels; c++) hwc[p * channels + c] = chw[c * plane + p]!;
  await sharp(hwc, { raw: { width, height, channels } }).png().toFile(file);
}
