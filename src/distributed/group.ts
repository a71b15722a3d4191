// A process group of workers over c10d: the rendezvous on a TCPStore (rank 0 keeps it),
// a Gloo process group, and the collectives, each bounded by the group's timeout. A
// collective that fails throws a WorkerError naming this rank and, where the store can
// still tell, the ranks that stopped answering.
import * as t from '../torch';
import { wrap, type Tensor } from '../torch/tensor';
import { native, type DistCounters, type GroupId, type ReducerId, type StoreId, type WorkId } from '../torch/native';

export interface GroupOptions {
  /** Address of the rendezvous (rank 0's host). */
  masterAddr: string;
  masterPort: number;
  worldSize: number;
  rank: number;
  /** Longest wait for the rendezvous and for any one collective, in ms. Default 300,000. */
  timeoutMs?: number;
  /** Address Gloo listens on; default 127.0.0.1 for a loopback master, else the host name's address. */
  bindHost?: string;
  /** Gloo's worker threads (concurrent collectives). Default 2. */
  glooThreads?: number;
  /**
   * A new file in a private folder to meet in instead of masterAddr:masterPort (c10d's
   * FileStore): one machine's workers then listen on no port for the rendezvous.
   */
  storeFile?: string;
}

/** A collective or the rendezvous failed; the message names this rank. */
export class WorkerError extends Error {
  constructor(
    message: string,
    readonly rank: number,
    /** Ranks found not answering after the failure (empty when unknown). */
    readonly missing: number[] = [],
  ) {
    super(message);
    this.name = 'WorkerError';
  }
}

/**
 * Ctrl-C or SIGTERM came while a collective waited on a worker that does not answer (stopped,
 * hung): the wait gave up a second later (native/dist.cc), and the run stops as a stop signal
 * stops it, without a checkpoint of this step (the last one written stays).
 */
export class StoppedWhileWaiting extends WorkerError {
  constructor(
    message: string,
    rank: number,
    readonly signal: 'SIGINT' | 'SIGTERM',
  ) {
    super(message, rank);
    this.name = 'StoppedWhileWaiting';
  }
}

/** The stop signal that ended a native wait (native/dist.cc says "interrupted by SIGINT"), if one did. */
function interruptedBy(message: string): 'SIGINT' | 'SIGTERM' | null {
  return (/interrupted by (SIGINT|SIGTERM)/.exec(message)?.[1] as 'SIGINT' | 'SIGTERM' | undefined) ?? null;
}

/** A native wait ended by Ctrl-C or SIGTERM while the workers were meeting, as a StoppedWhileWaiting. */
function stoppedWhileMeeting(e: unknown, rank: number, worldSize: number, where: string): StoppedWhileWaiting | null {
  const signal = interruptedBy((e as Error)?.message ?? '');
  if (!signal) return null;
  return new StoppedWhileWaiting(`worker rank ${rank} of ${worldSize}: ${signal} while waiting for the other workers at the rendezvous ${where}; stopped before anything was trained`, rank, signal);
}

const KEY = 'simclr';
const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\./.test(host);

/**
 * Gradient averaging overlapped with the backward pass (native/dist.cc): arm() before
 * loss.backward(), finish() after it; then every parameter's gradient is the mean over the
 * workers, as averageGradients makes it.
 */
export interface GradientReducer {
  /** The parameters it was made for, in the caller's order. */
  readonly params: readonly Tensor[];
  arm(): void;
  finish(): void;
  dispose(): void;
}

// A reducer that is never disposed (its owner dropped) gives back its hooks and buckets.
const reducerCleanup = new FinalizationRegistry<ReducerId>((id) => {
  try {
    native.distReducerDrop(id);
  } catch {
    // already dropped
  }
});

/** A started collective: wait() finishes it (at most the group's timeout). */
export interface Pending {
  wait(): void;
}

export class ProcessGroup {
  private closed = false;
  private failed: WorkerError | null = null;

  private constructor(
    readonly rank: number,
    readonly worldSize: number,
    readonly timeoutMs: number,
    private readonly where: string,
    private readonly store: StoreId,
    private readonly group: GroupId,
  ) {}

  /** Joins the rendezvous at masterAddr:masterPort and makes the Gloo process group. */
  static init(o: GroupOptions): ProcessGroup {
    const timeoutMs = o.timeoutMs ?? 300_000;
    const where = `${o.masterAddr}:${o.masterPort}`;
    const fail = (msg: string): never => {
      throw new WorkerError(`worker rank ${o.rank} of ${o.worldSize}: ${msg}`, o.rank);
    };
    if (!native.distAvailable()) fail('this addon was built without c10d\'s Gloo backend; install libgloo-dev and run `node scripts/setup.mjs --native`');
    if (!Number.isInteger(o.worldSize) || o.worldSize < 1) fail(`WORLD_SIZE must be a positive integer, got ${o.worldSize}`);
    if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) fail(`RANK must be between 0 and WORLD_SIZE - 1 = ${o.worldSize - 1}, got ${o.rank}`);
    if (!Number.isInteger(o.masterPort) || o.masterPort < 1 || o.masterPort > 65535) fail(`MASTER_PORT must be a port number (1-65535), got ${o.masterPort}`);
    let store: StoreId;
    if (o.storeFile) {
      try {
        store = native.distFileStoreOpen(o.storeFile, o.worldSize, timeoutMs);
      } catch (e) {
        return fail(`cannot open the rendezvous file ${o.storeFile}: ${(e as Error).message}`);
      }
      return ProcessGroup.join(store, o, timeoutMs, o.storeFile);
    }
    try {
      store = native.distStoreOpen(o.masterAddr, o.masterPort, o.rank === 0, timeoutMs);
    } catch (e) {
      const stopped = stoppedWhileMeeting(e, o.rank, o.worldSize, where);
      if (stopped) throw stopped;
      const msg = (e as Error).message;
      if (o.rank === 0 && /in use|EADDRINUSE/i.test(msg)) fail(`the master port ${o.masterPort} is in use on ${o.masterAddr}: choose another (--master-port with --nproc, else MASTER_PORT)`);
      if (o.rank === 0) fail(`cannot listen on ${where} for the rendezvous (MASTER_ADDR must be an address of rank 0's machine): ${msg}`);
      return fail(`cannot reach the rendezvous at ${where} (rank 0's machine) within ${timeoutMs / 1000} s: ${msg}`);
    }
    return ProcessGroup.join(store, o, timeoutMs, where);
  }

  /** Meets the others in the store and makes the Gloo process group over it. */
  private static join(store: StoreId, o: GroupOptions, timeoutMs: number, where: string): ProcessGroup {
    try {
      ProcessGroup.rendezvous(store, o, timeoutMs, where);
      const bind = o.bindHost ?? (isLoopback(o.masterAddr) ? '127.0.0.1' : '');
      const group = native.distGroupNew(store, o.rank, o.worldSize, timeoutMs, bind, o.glooThreads ?? 2);
      return new ProcessGroup(o.rank, o.worldSize, timeoutMs, where, store, group);
    } catch (e) {
      native.distStoreClose(store);
      if (e instanceof WorkerError) throw e;
      const stopped = stoppedWhileMeeting(e, o.rank, o.worldSize, where);
      if (stopped) throw stopped;
      throw new WorkerError(`worker rank ${o.rank} of ${o.worldSize}: making the Gloo process group failed: ${(e as Error).message}`, o.rank);
    }
  }

  // Every rank says it is here and which world size it was given; each then waits for all
  // of them, so a wrong WORLD_SIZE or a missing worker is named instead of hanging.
  private static rendezvous(store: StoreId, o: GroupOptions, timeoutMs: number, where: string): void {
    const claim = native.distStoreAdd(store, `${KEY}/claim/${o.rank}`, 1);
    if (claim > 1) throw new WorkerError(`worker rank ${o.rank}: another worker already joined the rendezvous at ${where} as rank ${o.rank} (each worker needs its own RANK)`, o.rank);
    native.distStoreSet(store, `${KEY}/size/${o.rank}`, String(o.worldSize));
    const deadline = Date.now() + timeoutMs;
    const missing: number[] = [];
    // Rank 0 closes the store when it stops (on a WORLD_SIZE it finds wrong, say): a lost store is said as that, not as a broken pipe.
    const storeGone = (e: unknown): never => {
      throw new WorkerError(`worker rank ${o.rank} of ${o.worldSize}: the rendezvous at ${where} closed before every worker had joined: rank 0 stopped, and its error says why (such as a WORLD_SIZE that differs between workers) (${(e as Error).message})`, o.rank, [0]);
    };
    for (let r = 0; r < o.worldSize; r++) {
      const left = deadline - Date.now();
      try {
        native.distStoreWait(store, `${KEY}/size/${r}`, Math.max(1, left));
      } catch (e) {
        const stopped = stoppedWhileMeeting(e, o.rank, o.worldSize, where);
        if (stopped) throw stopped;
        if (!/timeout|timed out/i.test((e as Error).message)) storeGone(e);
        missing.push(r);
        try {
          for (let q = r + 1; q < o.worldSize; q++) if (!native.distStoreCheck(store, `${KEY}/size/${q}`)) missing.push(q);
        } catch (e2) {
          storeGone(e2);
        }
        break;
      }
      let theirs = 0;
      try {
        theirs = Number(native.distStoreGet(store, `${KEY}/size/${r}`));
      } catch (e) {
        storeGone(e);
      }
      if (theirs !== o.worldSize) {
        throw new WorkerError(`worker rank ${o.rank}: WORLD_SIZE is ${o.worldSize} here but ${theirs} on rank ${r}; every worker must be given the same`, o.rank);
      }
    }
    if (missing.length) {
      throw new WorkerError(
        `worker rank ${o.rank} of ${o.worldSize}: rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not join the rendezvous at ${where} within ${timeoutMs / 1000} s ` +
          `(were ${o.worldSize} workers started? WORLD_SIZE must be the number of workers)`,
        o.rank,
        missing,
      );
    }
  }

  private get id(): GroupId {
    if (this.closed) throw new WorkerError(`worker rank ${this.rank}: the process group was destroyed`, this.rank);
    if (this.failed) throw this.failed;
    return this.group;
  }

  /** Turns a failed collective into a WorkerError naming this rank and the ranks that stopped answering. */
  private failure(what: string, e: unknown): WorkerError {
    if (e instanceof WorkerError) return e;
    const cause = (e as Error).message.replace(/^(dist\w+|backward): /, '');
    const signal = interruptedBy(cause);
    if (signal) {
      // No probing of the others (it takes seconds): the user asked to stop.
      this.failed = new StoppedWhileWaiting(`worker rank ${this.rank} of ${this.worldSize}: ${signal} while ${what} waited for a worker that does not answer; stopped without saving this step (the last checkpoint stays)`, this.rank, signal);
      return this.failed;
    }
    const missing = this.unresponsive();
    const who =
      missing === null
        ? `; the rendezvous store on rank 0 (${this.where}) is unreachable too, so rank 0 has stopped`
        : missing.length
          ? `; rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} stopped answering`
          : '';
    this.failed = new WorkerError(`worker rank ${this.rank} of ${this.worldSize}: ${what} failed${who} (${cause})`, this.rank, missing ?? [0]);
    return this.failed;
  }

  /**
   * After a failure: every surviving rank leaves a mark in the store and looks for the
   * others' for a few seconds; null when the store itself is gone (rank 0 stopped).
   */
  private unresponsive(): number[] | null {
    try {
      native.distStoreSet(this.store, `${KEY}/after-failure/${this.rank}`, '1');
      const deadline = Date.now() + Math.min(5_000, this.timeoutMs);
      const missing: number[] = [];
      for (let r = 0; r < this.worldSize; r++) {
        if (r === this.rank) continue;
        try {
          native.distStoreWait(this.store, `${KEY}/after-failure/${r}`, Math.max(1, deadline - Date.now()));
        } catch (e) {
          if (!/timeout|timed out/i.test((e as Error).message)) return null;
          missing.push(r);
        }
      }
      return missing;
    } catch {
      return null;
    }
  }

  private start(what: string, begin: () => WorkId): Pending {
    let work: WorkId;
    try {
      work = begin();
    } catch (e) {
      throw this.failure(what, e);
    }
    let done = false;
    return {
      wait: () => {
        if (done) return;
        done = true;
        try {
          native.distWait(work, this.timeoutMs);
        } catch (e) {
          throw this.failure(what, e);
        }
      },
    };
  }

  /**
   * Starts an in-place all-reduce of a contiguous tensor; wait() before reading it. Gloo
   * works on host memory: a GPU tensor goes through a CPU copy, written back by wait().
   */
  allReduceStart(x: Tensor, op: 'sum' | 'max' | 'min' = 'sum'): Pending {
    return this.staged(x, (host) => this.start(`allReduce(${op}) of [${x.shape.join(', ')}]`, () => native.distAllReduce(this.id, host.h, op)));
  }

  /** A collective on x's values in host memory: x itself on the CPU, else a copy, written back into x once it is done. */
  private staged(x: Tensor, run: (host: Tensor) => Pending): Pending {
    if (x.device === 'cpu') return run(x);
    const alias = x.detach();
    const host = alias.to('cpu');
    alias.dispose();
    let pending: Pending;
    try {
      pending = run(host);
    } catch (e) {
      host.dispose();
      throw e;
    }
    return {
      wait: () => {
        try {
          pending.wait();
          t.noGrad(() => x.copy_(host));
        } finally {
          host.dispose();
        }
      },
    };
  }

  /** In place: x becomes the sum (or mean) over the workers. */
  allReduce(x: Tensor, op: 'sum' | 'avg' | 'max' | 'min' = 'sum'): Tensor {
    this.allReduceStart(x, op === 'avg' ? 'sum' : op).wait();
    if (op === 'avg') t.noGrad(() => x.mul_(1 / this.worldSize));
    return x;
  }

  /** Every worker's x ([N, ...], the same shape everywhere), concatenated in rank order. */
  allGather(x: Tensor): Tensor {
    return t.tidy(() => {
      const input = x.detach().to('cpu').contiguous();
      const outs = Array.from({ length: this.worldSize }, () => t.zerosLike(input));
      this.start(`allGather of [${x.shape.join(', ')}]`, () => native.distAllGather(this.id, outs.map((o) => o.h), input.h)).wait();
      return t.cat(outs, 0).to(x.device);
    });
  }

  /** In place: x becomes root's x. */
  broadcast(x: Tensor, root = 0): Tensor {
    this.staged(x, (host) => this.start(`broadcast from rank ${root}`, () => native.distBroadcast(this.id, host.h, root))).wait();
    return x;
  }

  barrier(): void {
    this.start('barrier', () => native.distBarrier(this.id)).wait();
  }

  /** Sum over workers, recorded by autograd: the backward pass sums the gradient over workers too. */
  sumWithGrad(x: Tensor): Tensor {
    try {
      return wrap(native.distSumWithGrad(this.id, x.h, this.timeoutMs));
    } catch (e) {
      throw this.failure(`sum with gradient of [${x.shape.join(', ')}]`, e);
    }
  }

  /**
   * A reducer for these parameters: buckets lists indices into params, in the order the
   * backward pass finishes them (planBuckets). Every worker must make it the same.
   */
  gradientReducer(params: Tensor[], buckets: number[][]): GradientReducer {
    const ordered = buckets.flat().map((i) => params[i]!);
    const id = native.distReducerNew(this.id, ordered.map((p) => p.h), buckets.map((b) => b.length));
    const bytes = ordered.reduce((a, p) => a + (p.dtype === 'float64' ? 8 : 4) * (p.numel + 1), 0);
    const what = `averaging the gradients (${buckets.length} bucket${buckets.length > 1 ? 's' : ''}, ${bytes} bytes)`;
    let open = true;
    let armed = false;
    const self = this;
    const reducer: GradientReducer = {
      params: params.slice(),
      arm() {
        if (!open) throw new Error('the gradient reducer was disposed');
        armed = true;
        try {
          native.distReducerArm(id);
        } catch (e) {
          throw self.failure(what, e);
        }
      },
      finish() {
        if (!open) throw new Error('the gradient reducer was disposed');
        // A mistake of the caller's, not a worker's: the group stays usable.
        if (!armed) throw new Error('the gradient reducer: finish() without arm() before the backward pass');
        armed = false;
        void self.id; // a destroyed or failed group says so
        try {
          native.distReducerFinish(id, self.timeoutMs);
        } catch (e) {
          // A second backward pass is the caller's mistake, found before any wait: the group stays usable.
          if (/a second backward pass ran between arm\(\) and finish\(\)/.test((e as Error).message)) throw new Error(`${what}: ${(e as Error).message}`);
          throw self.failure(what, e);
        }
      },
      dispose() {
        if (!open) return;
        open = false;
        reducerCleanup.unregister(reducer);
        native.distReducerDrop(id);
      },
    };
    reducerCleanup.register(reducer, id, reducer);
    return reducer;
  }

  /**
   * An error thrown by something that ran collectives this side cannot see (a backward pass
   * through synchronized batch norm or the gathered projections), as a WorkerError naming
   * this rank and the ranks that stopped answering.
   */
  workerFailure(what: string, e: unknown): WorkerError {
    return this.failure(what, e);
  }

  /** This process's collectives so far: bytes handed to them by kind, and ms spent waiting. */
  counters(): DistCounters {
    return native.distCounters();
  }

  /**
   * Batch norm over every worker's batch, in training mode, recorded by autograd (one
   * collective forward, one backward): y, the batch's mean and biased variance, and the
   * number of values per channel.
   */
  syncBatchNorm(x: Tensor, o: { weight: Tensor | null; bias: Tensor | null; eps: number }): { y: Tensor; mean: Tensor; variance: Tensor; count: number } {
    let out: [Tensor, Tensor, Tensor, Tensor];
    try {
      out = native.distSyncBatchNorm(this.id, x.h, o.weight?.h ?? null, o.bias?.h ?? null, o.eps, this.timeoutMs).map((h) => wrap(h)) as [Tensor, Tensor, Tensor, Tensor];
    } catch (e) {
      if (e instanceof TypeError) throw e;
      throw this.failure(`synchronized batch norm of [${x.shape.join(', ')}]`, e);
    }
    const [y, mean, variance, count] = out;
    const n = count.item();
    count.dispose();
    return { y, mean, variance, count: n };
  }

  /** Numbers (a few figures per step) summed over the workers, in float64, in this thread (native/dist.cc sumInPlace). */
  sumNumbers(values: number[]): number[] {
    return t.tidy(() => {
      const x = t.tensor(Float64Array.from(values), [values.length], { dtype: 'float64' });
      try {
        return Array.from(wrap(native.distSumNow(this.id, x.h, this.timeoutMs)).data() as Float64Array);
      } catch (e) {
        throw this.failure(`sum of ${values.length} figure${values.length === 1 ? '' : 's'}`, e);
      }
    });
  }

  /** Leaves the group (and the store). Collectives after this throw. */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    // A collective still waits on a stuck worker: freeing the group would join Gloo's threads,
    // which wait for it too. The process is about to end; leave the group be.
    if (this.failed instanceof StoppedWhileWaiting) return;
    native.distGroupDestroy(this.group);
    native.distStoreClose(this.store);
  }
}
