// Reading batches ahead on a worker thread: the training thread asks for the batches it
// will need next and takes each when its step comes; at most `depth` are asked for or
// waiting at once, so memory stays at depth batches whatever the data set's size.
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ReadReply, ReadRequest } from './read-worker';
import type { HostBatch, StoreHandle } from './stored';

export class Prefetcher {
  private readonly worker: Worker;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (b: HostBatch) => void; reject: (e: Error) => void }>();
  /** requests by the caller's key, in the order asked */
  private readonly queued = new Map<string, Promise<HostBatch>>();
  private failure: Error | null = null;

  constructor(
    handle: StoreHandle,
    readonly depth: number,
  ) {
    if (!(depth >= 1)) throw new Error(`prefetch depth must be at least 1, got ${depth}`);
    this.worker = new Worker(join(__dirname, 'read-worker.js'), { workerData: handle });
    this.worker.on('message', (m: ReadReply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if ('error' in m) w.reject(new Error(m.error));
      else w.resolve(m.batch);
    });
    this.worker.on('error', (e) => {
      this.failure = e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    });
  }

  /** Whether `key` is asked for and not yet taken. */
  has(key: string): boolean {
    return this.queued.has(key);
  }

  /** Room for more requests. */
  room(): number {
    return this.depth - this.queued.size;
  }

  /** Asks for a batch ahead of its use (ignored when already asked for). */
  request(key: string, indices: readonly number[]): void {
    if (this.queued.has(key)) return;
    if (this.failure) throw this.failure;
    const id = this.nextId++;
    const p = new Promise<HostBatch>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    p.catch(() => {}); // a batch asked for and then dropped must not be an unhandled rejection
    this.queued.set(key, p);
    this.worker.postMessage({ id, indices: [...indices] } satisfies ReadRequest);
  }

  /** Takes a batch asked for before (or asks for it now). */
  take(key: string, indices: readonly number[]): Promise<HostBatch> {
    this.request(key, indices);
    const p = this.queued.get(key)!;
    this.queued.delete(key);
    return p;
  }

  /** Forgets every batch asked for (their buffers are dropped when they arrive). */
  clear(): void {
    this.queued.clear();
  }

  async dispose(): Promise<void> {
    this.queued.clear();
    await this.worker.terminate();
  }
}
