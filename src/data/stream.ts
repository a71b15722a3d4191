// Streaming image files for one-off passes (predict, eval on a folder): decoded a chunk at a
// time at their stored size, the next chunk decoding (on sharp's threads) while the caller
// works on this one; nothing is cached, and memory holds two chunks.
import { decodeAt, decodeStored, loadSharp, type DecodedImage } from './store/decode';
import { MemoryStore } from './store/memory-store';
import type { HostBatch } from './store/stored';

export interface StreamOptions {
  size: number;
  channels: 1 | 3;
  /** Images per chunk. Default 256. */
  chunk?: number;
  /** Files decoded at once. Default 16. */
  inFlight?: number;
  /**
   * Decode to size x size squares (shorter side resized, centre-cropped): what predict, serve
   * and exported models take. Default false: the stored size, as the cache keeps images.
   */
  square?: boolean;
}

export interface StreamChunk {
  /** positions (in the files given) of this chunk's decoded images, in order */
  positions: number[];
  /** their stored images on one canvas */
  batch: HostBatch;
  /** positions that could not be decoded, with why */
  failed: { position: number; error: string }[];
}

async function decodeChunk(sharp: Awaited<ReturnType<typeof loadSharp>>, files: readonly string[], from: number, to: number, o: StreamOptions): Promise<StreamChunk> {
  const out: (DecodedImage | null)[] = new Array(to - from).fill(null);
  const failed: StreamChunk['failed'] = [];
  let next = from;
  const run = async (): Promise<void> => {
    while (next < to) {
      const i = next++;
      try {
        out[i - from] = o.square ? await decodeAt(sharp, files[i]!, o.size, o.size, o.channels) : await decodeStored(sharp, files[i]!, o.size, o.channels);
      } catch (e) {
        failed.push({ position: i, error: (e as Error).message });
      }
    }
  };
  await Promise.all(Array.from({ length: o.inFlight ?? 16 }, run));
  failed.sort((a, b) => a.position - b.position);
  const kept = out.map((img, k) => ({ img, position: from + k })).filter((x): x is { img: DecodedImage; position: number } => x.img !== null);
  const store = new MemoryStore(
    o.channels,
    o.size,
    kept.map((x) => x.img.pixels),
    kept.map((x) => x.img.height),
    kept.map((x) => x.img.width),
  );
  const batch = store.read(kept.map((_, k) => k));
  return { positions: kept.map((x) => x.position), batch, failed };
}

/** Decodes `files` in chunks, one chunk ahead of the caller. */
export async function* streamImages(files: readonly string[], o: StreamOptions): AsyncGenerator<StreamChunk> {
  const sharp = await loadSharp();
  const chunk = o.chunk ?? 256;
  if (!(chunk >= 1)) throw new Error(`chunk must be at least 1 image, got ${chunk}`);
  let ahead: Promise<StreamChunk> | null = files.length > 0 ? decodeChunk(sharp, files, 0, Math.min(chunk, files.length), o) : null;
  for (let from = 0; ahead; from += chunk) {
    const current = await ahead;
    const nextFrom = from + chunk;
    ahead = nextFrom < files.length ? decodeChunk(sharp, files, nextFrom, Math.min(nextFrom + chunk, files.length), o) : null;
    yield current;
  }
}
