// A worker thread that reads batches of stored images from shard files (positioned reads)
// and collates them, so the training thread only wraps the finished buffer in a tensor.
import { parentPort, workerData } from 'node:worker_threads';
import { ShardStore } from './shard-store';
import type { HostBatch, StoreHandle } from './stored';

export interface ReadRequest {
  id: number;
  indices: number[];
}

export type ReadReply = { id: number; batch: HostBatch } | { id: number; error: string };

const store = new ShardStore(workerData as StoreHandle);
parentPort?.on('message', (r: ReadRequest) => {
  try {
    const batch = store.read(r.indices);
    const transfer: ArrayBuffer[] = [batch.pixels.buffer as ArrayBuffer];
    if (batch.extents) transfer.push(batch.extents.buffer as ArrayBuffer);
    parentPort!.postMessage({ id: r.id, batch } satisfies ReadReply, transfer);
  } catch (e) {
    parentPort!.postMessage({ id: r.id, error: (e as Error).message } satisfies ReadReply);
  }
});
