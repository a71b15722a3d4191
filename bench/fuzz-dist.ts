// The collective ops (native/dist.cc) fuzzed past their handle checks: the fuzz child opens
// a real FileStore (a file in its own temporary folder) and a Gloo process group of one over
// it, and the argument makers hand their ids, and those of the work items and gradient
// reducers the calls make, to the dist* ops alongside hostile numbers. Every wait gets a
// timeout of milliseconds (the store's own too), so an op waiting for a peer that never
// comes gives up at once; anything that still hangs is caught by the parent's watchdog.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Arg, Fn, Param, Rng } from './fuzz';

type HandleKind = 'store' | 'group' | 'work' | 'reducer';
const HANDLE_KINDS: readonly string[] = ['store', 'group', 'work', 'reducer'];
const isHandle = (name: string): name is HandleKind => HANDLE_KINDS.includes(name);

// Milliseconds: a group of one finishes its collectives well within them, and a wait for a
// key nobody sets costs no more.
const TIMEOUTS = [1, 2, 5];
const BAD_TIMEOUTS = [0, -1, NaN, Infinity, 0.5, 86_400_001, 2 ** 31, 1e300];
/** How long a store get waits for a key nobody sets. */
const STORE_TIMEOUT_MS = 5;
// Addresses only, or names refused before any DNS query, so no call waits on a resolver.
const BIND_HOSTS = ['127.0.0.1', '127.0.0.1', 'localhost', '::1', '', '\u0000', '127.0.0.1\u0000x', '192.0.2.1', 'a'.repeat(300)];
const KEYS = ['k', 'n', '0/0', '', 'a'.repeat(10_000)];
const LEAVES = ['leaf-grad[3]', 'leaf-grad[2,3]'];
const BN_INPUTS = ['rand[1,3,8,8]', 'randn[4,3]', 'randn[2,3]', 'leaf-grad[2,3]', 'channels-last'];
const BN_CHANNELS = ['rand[3]', 'leaf-grad[3]'];
/** Pool tensors of one dtype and shape: an all-gather's output and its input. */
const GATHER_PAIRS: Array<[string, string]> = [['rand[3]', 'leaf-grad[3]'], ['randn[2,3]', 'leaf-grad[2,3]']];
// Work items and groups the harness keeps; past these it finishes or destroys the oldest
// (each group holds Gloo threads, whose stacks the child's address-space cap runs out of).
const MAX_WORKS = 16;
const MAX_EXTRA_GROUPS = 2;
const MAX_REDUCERS = 4;
/** Ops whose result is an id, not a tensor handle. */
const ID_RESULTS: Record<string, HandleKind | 'none'> = {
  distAllReduce: 'work', distAllGather: 'work', distBroadcast: 'work', distBarrier: 'work', distReducerNew: 'reducer',
  distGroupNew: 'group', distFileStoreOpen: 'store', distStoreOpen: 'store', distStoreAdd: 'none', distStorePort: 'none', distPending: 'none',
};

export class DistHarness {
  private readonly live: Record<HandleKind, number[]> = { store: [], group: [], work: [], reducer: [] };
  /** Ids closed, destroyed, waited for or dropped: used again now and then. */
  private readonly ended: Record<HandleKind, number[]> = { store: [], group: [], work: [], reducer: [] };
  private mainStore = 0;
  private mainStorePath = '';
  private mainGroup = 0;
  private files = 0;
  private gatherPartner: string | undefined;
  private listLength = 1;
  private focus = false;
  private readonly ran = new Set<string>();

  constructor(
    private readonly f: Record<string, Fn>,
    private readonly dir: string,
    private readonly say: (line: string) => void,
    private readonly pool: (name: string) => Arg | undefined,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  /** Opens the store and the group of one again where a call closed or destroyed them. */
  ensure(): void {
    try {
      if (!this.mainStore) {
        this.mainStorePath = this.newPath();
        this.say(`dist: open the store ${this.mainStorePath}`);
        this.mainStore = this.f.distFileStoreOpen!(this.mainStorePath, 1, STORE_TIMEOUT_MS) as number;
        this.live.store.push(this.mainStore);
        // Keys the gets and waits find (others they wait for, in vain, for a few ms).
        this.f.distStoreSet!(this.mainStore, KEYS[0], 'v');
        this.f.distStoreAdd!(this.mainStore, KEYS[1], 1);
      }
      if (!this.mainGroup) {
        this.say(`dist: open a group of one on store ${this.mainStore}`);
        this.mainGroup = this.f.distGroupNew!(this.mainStore, 0, 1, 5000, '127.0.0.1', 1) as number;
        this.live.group.push(this.mainGroup);
      }
    } catch (e) {
      this.say(`dist: opening failed: ${(e as Error).message}`);
    }
  }

  private newPath(): string {
    return join(this.dir, `store-${this.files++}`);
  }

  /**
   * Before a call's arguments are made: half the dist* calls are focused, their parameters
   * almost all given values that pass the checks, so that ops with many parameters (batch
   * norm, the reducer) run too; the others mix those values with hostile ones.
   */
  beginCall(op: string, rng: Rng): void {
    this.focus = op.startsWith('dist') && rng.chance(0.5);
    this.gatherPartner = undefined;
    this.listLength = 1;
    // A store or group a call closed is made again when a focused call wants one (a group
    // costs milliseconds to make and to destroy).
    if (this.focus) this.ensure();
  }

  /** A value for a dist* op's parameter, or undefined to leave it to the generic makers. */
  arg(op: string, p: Param, rng: Rng): Arg | undefined {
    if (!op.startsWith('dist')) return undefined;
    const want = (chance: number): boolean => rng.chance(this.focus ? 0.95 : chance);
    const pick = (xs: readonly (string | number)[]): Arg => ((x) => ({ value: x, desc: typeof x === 'string' ? JSON.stringify(x.slice(0, 20)) : String(x) }))(rng.pick(xs));
    if (isHandle(p.name)) {
      const [ids, ended] = [this.live[p.name], this.ended[p.name]];
      if (ids.length && want(0.75)) return ((id) => ({ value: id, desc: `live-${p.name}#${id}` }))(rng.pick(ids));
      return ended.length && rng.chance(0.3) ? ((id) => ({ value: id, desc: `ended-${p.name}#${id}` }))(rng.pick(ended)) : undefined;
    }
    switch (p.name) {
      case 'timeoutMs': return want(0.85) ? pick(TIMEOUTS) : pick(BAD_TIMEOUTS);
      case 'path': return this.pathArg(rng);
      case 'bindHost': return want(0.9) ? pick(BIND_HOSTS) : undefined;
      case 'key': return want(0.6) ? pick(KEYS) : undefined;
      case 'threads': return want(0.8) ? pick([1, 2]) : undefined;
      // Rank 0 of 2 waits its timeout for the peer; rank 1 connects to an address an earlier
      // group left in the store, which Gloo retries for a second (the generic makers still try it).
      case 'worldSize': return want(0.6) ? pick([1, 1, 1, 1, 1, 2]) : undefined;
      case 'rank': return want(0.6) ? pick([0]) : undefined;
      case 'root': return want(0.6) ? pick([0]) : undefined;
      case 'eps': return want(0.7) ? pick([1e-5, 0.1]) : undefined;
      case 'params': {
        if (op !== 'distReducerNew' || !want(0.6)) return undefined;
        const names = rng.chance(0.5) ? [rng.pick(LEAVES)] : LEAVES;
        this.listLength = names.length;
        return this.tensorList(names);
      }
      case 'bucketSizes': {
        if (!want(0.6)) return undefined;
        const sizes = rng.pick([[this.listLength], new Array<number>(this.listLength).fill(1), [2], [0]]);
        return { value: sizes, desc: `[${sizes}]` };
      }
      case 'outputs': {
        if (!want(0.6)) return undefined;
        const [out, input] = rng.pick(GATHER_PAIRS);
        this.gatherPartner = input;
        return this.tensorList([out]);
      }
      case 'tensor': return op === 'distAllGather' && this.gatherPartner ? this.pool(this.gatherPartner) : undefined;
      case 'input': return want(0.6) ? this.pool(rng.pick(BN_INPUTS)) : undefined;
      case 'weight': case 'bias': return want(0.6) ? this.pool(rng.pick(BN_CHANNELS)) : undefined;
      default: return undefined;
    }
  }

  private pathArg(rng: Rng): Arg | undefined {
    const r = rng.next();
    // Only paths in the child's own folder: a new file, the open store's, the folder itself, one under a missing folder.
    const path = r < 0.6 ? this.newPath() : r < 0.7 ? this.mainStorePath : r < 0.8 ? this.dir : r < 0.9 ? join(this.dir, 'missing', 'store') : undefined;
    return path === undefined ? undefined : { value: path, desc: JSON.stringify(path) };
  }

  private tensorList(names: string[]): Arg | undefined {
    const items = names.map(this.pool);
    if (items.some((x) => x === undefined)) return undefined;
    return { value: items.map((x) => x!.value), desc: `[${items.map((x) => x!.desc).join(',')}]` };
  }

  /** Why a call is not made, or undefined. */
  skip(op: string, args: readonly Arg[]): string | undefined {
    if (op !== 'distGroupNew') return undefined;
    const inRange = (i: number, lo: number, hi: number): boolean => Number.isInteger(args[i]?.value) && (args[i]!.value as number) > lo && (args[i]!.value as number) <= hi;
    // Gloo's full mesh opens a socket per peer before its timeout applies: minutes for 2^16 peers.
    if (inRange(2, 64, 1 << 20)) return 'skipped: a world size whose full mesh (a socket per peer) takes minutes to set up';
    // A Gloo thread the capped child cannot start leaves libtorch's constructor hung in pthread_cond_destroy.
    if (inRange(5, 8, 64)) return 'skipped: more Gloo threads than the capped child can start';
    return undefined;
  }

  /** Whether a handle argument names a store, group, work item or reducer open now. */
  holdsLive(params: readonly Param[], args: readonly Arg[]): boolean {
    return params.some((p, i) => isHandle(p.name) && this.live[p.name].includes(args[i]?.value as number));
  }

  /** Whether the op's result is an id (kept here) rather than a tensor for the pool. */
  claims(op: string): boolean {
    return op in ID_RESULTS;
  }

  /** Bookkeeping after a call: the ids it made or ended, and whether it ran with a live handle. */
  after(op: string, args: readonly Arg[], result: unknown, returned: boolean, past: boolean, live: boolean): void {
    if (past && live) this.ran.add(op);
    const id = args[0]?.value as number;
    if (op === 'distWait' && past) this.end('work', id);
    if (returned && op === 'distGroupDestroy') this.end('group', id);
    if (returned && op === 'distStoreClose') this.end('store', id);
    if (returned && op === 'distReducerDrop') this.end('reducer', id);
    const kind = ID_RESULTS[op];
    if (returned && typeof result === 'number' && kind && kind !== 'none') {
      // A store the fuzz opened may wait c10d's 300 s for a key: closed at once.
      if (kind === 'store') this.harness('distStoreClose', result);
      else this.live[kind].push(result);
      // Closing a second store on the open store's path removed its file (world size 1).
      if (kind === 'store' && !existsSync(this.mainStorePath)) this.end('store', this.mainStore);
    }
    this.trim();
  }

  /** An id no longer open: kept among the ended ones. */
  private end(kind: HandleKind, id: number): void {
    if (!this.live[kind].includes(id)) return;
    this.live[kind] = this.live[kind].filter((x) => x !== id);
    this.ended[kind] = [...this.ended[kind].slice(-7), id];
    if (kind === 'store' && id === this.mainStore) this.mainStore = 0;
    if (kind === 'group' && id === this.mainGroup) this.mainGroup = 0;
  }

  private trim(): void {
    const oldest = (kind: HandleKind, keep: number, op: string, ...rest: unknown[]): void => {
      const kept = kind === 'group' ? this.mainGroup : NaN; // the group of one stays
      for (const id of this.live[kind].filter((x) => x !== kept).slice(0, Math.max(0, this.live[kind].length - keep))) {
        this.end(kind, id);
        this.harness(op, id, ...rest);
      }
    };
    oldest('work', MAX_WORKS, 'distWait', 1000);
    oldest('reducer', MAX_REDUCERS, 'distReducerDrop');
    oldest('group', MAX_EXTRA_GROUPS + 1, 'distGroupDestroy');
  }

  /** A call of the harness's own, logged like the fuzz's so a crash in it is named. */
  private harness(op: string, ...args: unknown[]): void {
    this.say(`dist: ${op}(${args.join(', ')})`);
    try {
      this.f[op]!(...args);
    } catch (e) {
      this.say(`dist: ${op} threw: ${(e as Error).message}`);
    }
  }

  /** The dist* ops taking a store, group, work item or reducer. */
  static collectiveOps(sigs: ReadonlyMap<string, readonly Param[]>): string[] {
    return [...sigs].filter(([op, params]) => op.startsWith('dist') && params.some((p) => isHandle(p.name))).map(([op]) => op).sort();
  }

  /** The ops that got past their argument checks with a live handle. */
  ranOps(): string[] {
    return [...this.ran].sort();
  }

  /** Removes the child's folder (the store files in it). */
  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
