// What `simclr serve` takes on at once, so that no client (a slow one holding connections, a
// flood, an image bomb) can take the server down: connections, images admitted and not yet
// answered (503 with Retry-After past it), bytes per request, pixels per image, decodes at
// once, and the time a request's headers and body may take.
import { loadSharp } from '../data';
import { FairQueue } from './fair-queue';

export interface ServeLimits {
  /** open connections; past it the server accepts no more until some close */
  maxConnections: number;
  /** images admitted (decoding, queued or in a forward pass) and not yet answered */
  maxQueue: number;
  /** one request's body, in bytes (a multipart body with all its files) */
  maxRequestBytes: number;
  /** an image's width x height before decoding: a small file can hold a huge picture */
  maxPixels: number;
  /** images decoded at once (sharp works on its own threads) */
  decodes: number;
  /** ms for a request's headers, and for the whole request */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

export const SERVE_LIMITS: ServeLimits = {
  maxConnections: 256,
  maxQueue: 256,
  maxRequestBytes: 64 * 2 ** 20,
  maxPixels: 40_000_000,
  decodes: 4,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
};

/** The formats served: JPEG, PNG and WebP, told by their first bytes (not by what the client says). */
export function imageFormat(bytes: Uint8Array): 'jpeg' | 'png' | 'webp' | null {
  const b = bytes;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return 'png';
  if (b.length >= 12 && Buffer.from(b.subarray(0, 4)).toString('latin1') === 'RIFF' && Buffer.from(b.subarray(8, 12)).toString('latin1') === 'WEBP') return 'webp';
  return null;
}

/** An image's pixel count from its header alone (nothing decoded); null when the header cannot be read. */
export async function headerPixels(bytes: Buffer): Promise<number | null> {
  try {
    const m = await (await loadSharp())(bytes, { limitInputPixels: false }).metadata();
    return m.width && m.height ? m.width * m.height : null;
  } catch {
    return null;
  }
}

/** A count of units taken and given back, refusing what would go past its bound. */
export class Admission {
  private taken = 0;
  constructor(readonly max: number) {}
  get inUse(): number {
    return this.taken;
  }
  tryTake(n: number): boolean {
    if (this.taken + n > this.max) return false;
    this.taken += n;
    return true;
  }
  give(n: number): void {
    this.taken = Math.max(0, this.taken - n);
  }
}

/** At most `max` tasks at once; the others wait their turn, first come first served. */
export class Gate {
  private running = 0;
  private readonly waiting = new FairQueue<() => void>();
  constructor(private readonly max: number) {}
  /** Runs the task once a place is free; waiting tasks take places round-robin across their groups (requests). */
  async run<T>(task: () => Promise<T>, group: unknown = task): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((resolve) => this.waiting.push(group, resolve));
    this.running++;
    try {
      return await task();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}
