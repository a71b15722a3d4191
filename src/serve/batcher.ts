// Micro-batching: requests whose images are decoded in the same turn of the event loop go
// through the model together (one forward pass for up to maxBatch images), so a server under
// concurrent load computes in batches while a lone request waits for nothing. Batches take
// the waiting images round-robin across requests (FairQueue).
import { FairQueue } from './fair-queue';

type Entry<In, Out> = { input: In; resolve: (o: Out) => void; reject: (e: unknown) => void };

export class Batcher<In, Out> {
  private readonly queue = new FairQueue<Entry<In, Out>>();
  private scheduled = false;
  /** Sizes of the batches run, for tests and statistics. */
  readonly batchSizes: number[] = [];

  constructor(
    private readonly runBatch: (inputs: In[]) => Out[],
    readonly maxBatch = 32,
  ) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new Error(`Batcher: maxBatch must be a positive integer, got ${maxBatch}`);
  }

  /** The input's output, computed in a batch; `group` (its request) decides its turn. */
  submit(input: In, group: unknown = input): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push(group, { input, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const batch: Entry<In, Out>[] = [];
    while (batch.length < this.maxBatch && this.queue.length > 0) batch.push(this.queue.shift()!);
    if (batch.length === 0) return;
    if (this.queue.length > 0) this.schedule();
    this.batchSizes.push(batch.length);
    if (this.batchSizes.length > 10_000) this.batchSizes.splice(0, 5_000);
    try {
      const out = this.runBatch(batch.map((b) => b.input));
      batch.forEach((b, i) => b.resolve(out[i]!));
    } catch (e) {
      for (const b of batch) b.reject(e);
    }
  }
}
