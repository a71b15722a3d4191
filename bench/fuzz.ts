// Fuzzes every op of the native addon with hostile arguments, in child processes, and
// counts the calls that crashed (a signal or an abort) instead of returning or throwing.
//
//   npm run bench:fuzz                     100,000 calls (FUZZ_CALLS, FUZZ_SEED to change)
//   node dist/bench/fuzz.js --child ...    one child (what the parent spawns)
//
// Ops are not listed here: they are the functions the addon exports. Their parameter
// names come from the addon's own "expected at most N argument(s) (names)" TypeError, and
// the kind each parameter wants is learnt from the "argument 'x' must be ..." TypeErrors
// the fuzzing provokes, so most calls get past the type checks and reach libtorch. Each
// child opens a file store and a Gloo group of one (bench/fuzz-dist.ts) whose ids go to
// the collective ops, so those run too. A child whose log stands still (a call that does
// not return) is killed and counted as a hang. The figures (name=value, and how many
// parameters the calls got to: bench/fuzz-reach.ts) go to bench/results/fuzz.json.
// test/fuzz.test.ts runs a shorter fuzz in the test suite.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DistHarness } from './fuzz-dist';
import { Reach } from './fuzz-reach';
import { writeBenchResults } from './results-file';

// ---------------------------------------------------------------- seeded random numbers
/** xorshift32: small, fast, and the same sequence for the same seed everywhere. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed ^ 0x2545f491) >>> 0 || 1;
    for (let i = 0; i < 8; i++) this.next();
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.s = x;
    return x / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<X>(xs: readonly X[]): X {
    return xs[this.int(xs.length)]!;
  }
}

// ---------------------------------------------------------------- the child: makes the calls
type Kind = 'unknown' | 'tensor' | 'tensors' | 'ints' | 'int' | 'number' | 'bool' | 'string' | 'dtype' | 'device' | 'bytes';
export interface Param {
  name: string;
  optional: boolean;
  kind: Kind;
  choices: string[];
}
export interface Arg {
  value: unknown;
  desc: string;
}
export type Fn = (...args: unknown[]) => unknown;

const DTYPES = ['float32', 'float64', 'float16', 'bfloat16', 'uint8', 'int8', 'int16', 'int32', 'int64', 'bool'];
const SMALL_INTS = [0, 1, 2, 3, 4, -1, -2, 5, 8];
const HOSTILE_NUMBERS = [
  NaN, Infinity, -Infinity, -0, 0.5, -0.5, 2 ** 31, 2 ** 31 - 1, -(2 ** 31), 2 ** 32, 2 ** 40, 2 ** 53, 2 ** 53 + 2, 2 ** 63, -(2 ** 63),
  2 ** 64, 1e300, -1e300, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, Number.MAX_VALUE, Number.MIN_VALUE, 1000, 65536, 2 ** 28 + 1,
];
const NUMBERS = [0, 1, -1, 0.5, 2, 1e-5, 0.1, 3];
const HOSTILE_STRINGS = ['', 'x', '\u0000', 'cpu', 'float32', 'meta', 'cuda', 'a'.repeat(100_000), '\u{1F642}', 'bilinear\u0000', 'EQ'];
const DEVICES = ['cpu', 'cpu', 'cpu', 'meta', 'cuda', 'cuda:0', 'cuda:99999999999', 'cpu:0', 'cpu:1', 'cpu:-5', 'mps', 'xla', 'lazy', 'mkldnn', ':', 'cuda:'];
// Results and pool tensors above this many elements are dropped, so no op is handed a giant view.
const MAX_POOLED_NUMEL = 4096;

function describeNumber(x: number): string {
  return Object.is(x, -0) ? '-0' : String(x);
}

/**
 * One child: `calls` calls from the seed, each logged (one line, synchronously) before it is
 * made. Its store files go in `dir` (removed at the end).
 */
export function runChild(seed: number, calls: number, logPath: string, dir: string): void {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { getNative } = require('../src/torch/native') as typeof import('../src/torch/native');
  const n = getNative() as unknown as Record<string, unknown>; // the addon itself: every op, loaded now
  const ops = Object.keys(n)
    .filter((k) => typeof n[k] === 'function')
    .sort();
  const fns = n as Record<string, Fn>;
  const log = openSync(logPath, 'w');
  const rng = new Rng(seed);
  const say = (line: string): void => {
    writeSync(log, line + '\n');
  };

  // Parameter names, from the addon's own argument-count error.
  const sigs = new Map<string, Param[]>();
  for (const op of ops) {
    say(`probe ${op}(16 x undefined)`);
    let params: Param[] = [];
    try {
      fns[op]!(...new Array(16).fill(undefined));
    } catch (e) {
      const m = /expected at most \d+ argument\(s\) \(([^)]*)\)/.exec((e as Error).message);
      if (m && m[1]!.trim())
        params = m[1]!.split(',').map((p) => {
          const name = p.trim();
          return { name: name.replace(/\?$/, ''), optional: name.endsWith('?'), kind: 'unknown' as Kind, choices: [] };
        });
    }
    sigs.set(op, params);
  }

  const learn = (op: string, message: string): void => {
    const m = /^(\w+): argument '([^']+)' must be (.*?), got /.exec(message);
    if (!m || m[1] !== op) return;
    const param = sigs.get(op)?.find((p) => p.name === m[2]);
    if (!param) return;
    const want = m[3]!;
    let kind: Kind = 'unknown';
    let choices: string[] = [];
    if (want === 'a Tensor') kind = 'tensor';
    else if (want.startsWith('an array of Tensors')) kind = 'tensors';
    else if (want.startsWith('an array of integers') || want.startsWith('a shape')) kind = 'ints';
    else if (want === 'an integer' || want.startsWith('a thread count')) kind = 'int';
    else if (want === 'a number') kind = 'number';
    else if (want === 'a boolean') kind = 'bool';
    else if (want === 'a dtype name' || want.startsWith('one of float32')) kind = 'dtype';
    else if (want.startsWith('a device name')) kind = 'device';
    else if (want.startsWith('a typed array')) kind = 'bytes';
    else if (want === 'a string') kind = 'string';
    else if (want.startsWith('one of ')) [kind, choices] = ['string', want.slice(7).split(', ')];
    else if (want.includes("'")) [kind, choices] = ['string', [...want.matchAll(/'([^']*)'/g)].map((x) => x[1]!)];
    if (kind === 'unknown') return;
    // A generic "a string" never replaces what a more specific message taught.
    if (kind === 'string' && choices.length === 0 && param.kind !== 'unknown' && param.kind !== 'int') {
      if (param.kind === 'dtype' || param.kind === 'device' || param.kind === 'string') return;
    }
    param.kind = kind;
    if (choices.length) param.choices = choices;
  };

  // ---- a pool of tensors of many kinds (and handles gone stale)
  const f = fns;
  const stale: number[] = [];
  const recipes: Array<[string, () => unknown]> = [
    ['scalar', () => f.full!([], 2.5)],
    ['rand[3]', () => f.rand!([3])],
    ['randn[2,3]', () => f.randn!([2, 3])],
    ['randn[4,3]', () => f.randn!([4, 3])],
    ['rand[1,3,8,8]', () => f.rand!([1, 3, 8, 8])],
    ['randn[2,1,5,5]', () => f.randn!([2, 1, 5, 5])],
    ['grid[1,4,4,2]', () => f.addScalar!(f.mulScalar!(f.rand!([1, 4, 4, 2]), 2), -1)],
    ['theta[1,2,3]', () => f.randn!([1, 2, 3])],
    ['zeros[0]', () => f.zeros!([0])],
    ['zeros[2,0]', () => f.zeros!([2, 0])],
    ['arange-int64[6]', () => f.arange!(0, 6, 1, 'int64')],
    ['labels-int64[4]', () => f.randint!(0, 3, [4])],
    ['bad-index-int64', () => f.fromBytes!(new BigInt64Array([5n, -7n, 100n, -(2n ** 63n)]), [4], 'int64')],
    ['mask-bool[2,3]', () => f.compareScalar!(f.rand!([2, 3]), 'gt', 0.5)],
    ['uint8[4]', () => f.randint!(0, 255, [4], 'uint8')],
    ['float64[3,3]', () => f.randn!([3, 3], 'float64')],
    ['float16[3]', () => f.toDtype!(f.rand!([3]), 'float16')],
    ['bfloat16[2,2]', () => f.toDtype!(f.rand!([2, 2]), 'bfloat16')],
    ['int32[5]', () => f.arange!(-2, 3, 1, 'int32')],
    ['int8[3]', () => f.full!([3], -128, 'int8')],
    ['rng-state', () => f.getRngState!()],
    ['rng-sized-expanded-uint8', () => f.expand!(f.zeros!([1], 'uint8'), [(f.numel as Fn)(f.getRngState!()) as number])],
    ['expanded[16]', () => f.expand!(f.ones!([1]), [16])],
    ['expanded[4,3]', () => f.expand!(f.randn!([1, 3]), [4, 3])],
    ['transposed[4,3]', () => f.transpose!(f.randn!([3, 4]), 0, 1)],
    ['narrowed', () => f.narrow!(f.randn!([10]), 0, 3, 4)],
    ['channels-last', () => f.contiguous!(f.rand!([1, 3, 4, 4]), 'channels_last')],
    ['meta[2,3]', () => f.zeros!([2, 3], 'float32', 'meta')],
    ['leaf-grad[3]', () => f.setRequiresGrad!(f.randn!([3]), true)],
    ['leaf-grad[2,3]', () => f.setRequiresGrad!(f.randn!([2, 3]), true)],
    ['nonfinite[4]', () => f.fromBytes!(new Float32Array([NaN, Infinity, -Infinity, -0]), [4], 'float32')],
    ['huge-values[2,2]', () => f.fromBytes!(new Float64Array([1e300, -1e300, 5e-324, 2 ** 63]), [2, 2], 'float64')],
  ];
  const base: Array<{ name: string; h: number; make: () => unknown }> = [];
  const extra: Array<{ name: string; h: number }> = [];
  const refill = (): void => {
    for (const r of recipes) {
      const slot = base.find((b) => b.name === r[0]);
      if (slot && !(f.isDisposed!(slot.h) as boolean)) continue;
      say(`pool ${r[0]}`);
      try {
        const h = r[1]() as number;
        if (slot) {
          stale.push(slot.h);
          slot.h = h;
        } else base.push({ name: r[0], h, make: r[1] });
      } catch (e) {
        say(`pool ${r[0]} failed: ${(e as Error).message}`);
      }
    }
  };
  const poolNamed = (name: string): Arg | undefined => {
    const e = base.find((b) => b.name === name);
    if (!e) return undefined;
    victims.push(e.h);
    return { value: e.h, desc: `T(${e.name})` };
  };
  const dist = new DistHarness(fns, dir, say, poolNamed);
  refill();
  dist.ensure();
  const addResult = (h: unknown, desc: string): void => {
    if (typeof h !== 'number') return;
    try {
      if ((f.isDisposed!(h) as boolean) || (f.numel!(h) as number) > MAX_POOLED_NUMEL || extra.length > 64 || rng.chance(0.3)) {
        f.dispose!(h);
        stale.push(h);
        return;
      }
    } catch {
      return;
    }
    extra.push({ name: desc, h });
  };

  // ---- argument makers; each returns a value and how to print it
  let victims: number[] = []; // tensors of the current call, for getters that dispose
  let buffers: ArrayBufferLike[] = []; // buffers of the current call, for getters that detach
  let temps: number[] = []; // tensors a getter made to grow the slot table
  let protoIndex: string | null = null; // an Array.prototype getter to remove after the call
  const poolTensor = (): Arg => {
    const all = extra.length && rng.chance(0.3) ? extra : base;
    const e = rng.pick(all);
    victims.push(e.h);
    return { value: e.h, desc: `T(${e.name})` };
  };
  const anyValue = (): Arg => {
    switch (rng.int(22)) {
      case 0: return { value: undefined, desc: 'undefined' };
      case 1: return { value: null, desc: 'null' };
      case 2: return { value: {}, desc: '{}' };
      case 3: return { value: [], desc: '[]' };
      case 4: return { value: () => 1, desc: 'function' };
      case 5: return { value: Symbol('s'), desc: 'Symbol' };
      case 6: return { value: 10n, desc: '10n' };
      case 7: return { value: new Number(1), desc: 'new Number(1)' };
      case 8: {
        const h = rng.pick(base).h;
        return { value: { valueOf: () => (f.dispose!(h), 1) }, desc: '{valueOf disposing}' };
      }
      case 9: return { value: new Proxy({}, { get: () => { throw new Error('proxy trap'); } }), desc: 'Proxy(throwing)' };
      case 10: return { value: true, desc: 'true' };
      case 11: return { value: 'float32', desc: "'float32'" };
      case 12: { const x = rng.pick(HOSTILE_NUMBERS); return { value: x, desc: describeNumber(x) }; }
      case 13: return poolTensor();
      case 14: return stale.length ? { value: rng.pick(stale), desc: 'stale-handle' } : { value: -1, desc: '-1' };
      case 15: return ints();
      case 16: return tensors();
      case 17: return bytes();
      case 18: return { value: rng.pick(HOSTILE_STRINGS), desc: 'hostile-string' };
      case 19: return { value: new Date(0), desc: 'Date' };
      case 20: return { value: { length: 2, 0: 1, 1: 2 }, desc: 'array-like' };
      default: { const x = rng.pick(SMALL_INTS); return { value: x, desc: String(x) }; }
    }
  };
  // What a getter does while the addon reads an array element.
  const sabotage = (arr: unknown[]): [() => void, string] => {
    switch (rng.int(8)) {
      case 0: return [() => { arr.push(...new Array(100_000).fill(1)); }, 'grow'];
      case 1: return [() => { arr.length = 0; }, 'shrink'];
      case 2: return [() => { for (const v of victims) f.dispose!(v); }, 'dispose-args'];
      case 3: return [() => { for (const b of buffers) try { structuredClone(b, { transfer: [b as ArrayBuffer] }); } catch { /* not transferable */ } }, 'detach'];
      case 4: return [() => { for (let i = 0; i < 3000; i++) temps.push(f.ones!([1]) as number); }, 'grow-slot-table'];
      case 5: return [() => { throw new Error('getter threw'); }, 'throw'];
      case 6: return [() => { for (const v of victims) f.dispose!(v); for (let i = 0; i < 200; i++) temps.push(f.zeros!([2]) as number); }, 'dispose-and-reuse-slots'];
      default: return [() => { arr.length = 1 << 20; }, 'grow-sparse'];
    }
  };
  // Arrays: plain, or hostile in one of many ways.
  const hostileArray = (make: () => Arg): Arg => {
    const len = rng.int(4);
    const items: Arg[] = Array.from({ length: len }, make);
    const arr: unknown[] = items.map((x) => x.value);
    const inner = items.map((x) => x.desc).join(',');
    switch (rng.int(8)) {
      case 0: {
        const k = rng.int(len + 1);
        const [act, what] = sabotage(arr);
        const value = k < len ? arr[k] : 1;
        Object.defineProperty(arr, k, { get() { act(); return value; }, configurable: true, enumerable: true });
        return { value: arr, desc: `[${inner}]+getter@${k}:${what}` };
      }
      case 1: {
        const a: unknown[] = [];
        a.length = rng.pick([2 ** 32 - 1, 2 ** 20 + 1, 3, 1000]);
        return { value: a, desc: `sparse(length ${a.length})` };
      }
      case 2: {
        // A hole read through a getter on Array.prototype.
        const a = [...arr, undefined];
        delete a[a.length - 1];
        const k = String(a.length - 1);
        const [act, what] = sabotage(a);
        // The setter lets every other array (the harness's own, Node's) still write that index.
        Object.defineProperty(Array.prototype, k, {
          get() {
            act();
            return 1;
          },
          set(this: unknown[], v: unknown) {
            Object.defineProperty(this, k, { value: v, writable: true, enumerable: true, configurable: true });
          },
          configurable: true,
        });
        protoIndex = k;
        return { value: a, desc: `[${inner},<hole>]+Array.prototype getter:${what}` };
      }
      case 3: return { value: new Proxy(arr, {}), desc: `Proxy([${inner}])` };
      case 4: return { value: [...arr, rng.pick(['1', {}, null, 1n, [1], undefined])], desc: `[${inner},<non-number>]` };
      case 5: return { value: Int32Array.from([1, 2]), desc: 'Int32Array[1,2]' };
      default: return { value: arr, desc: `[${inner}]` };
    }
  };
  const intValue = (): Arg => {
    const x = rng.chance(0.8) ? rng.pick(SMALL_INTS) : rng.pick(HOSTILE_NUMBERS);
    return { value: x, desc: describeNumber(x) };
  };
  const ints = (): Arg => (rng.chance(0.25) ? hostileArray(intValue) : (() => {
    const items = Array.from({ length: rng.int(5) }, intValue);
    return { value: items.map((x) => x.value), desc: `[${items.map((x) => x.desc).join(',')}]` };
  })());
  const tensor = (): Arg => {
    const r = rng.next();
    if (r < 0.8) return poolTensor();
    if (r < 0.88 && stale.length) return { value: rng.pick(stale), desc: 'stale-handle' };
    if (r < 0.94) return intValue();
    return anyValue();
  };
  const tensors = (): Arg => (rng.chance(0.25) ? hostileArray(tensor) : (() => {
    const items = Array.from({ length: rng.int(4) }, () => (rng.chance(0.95) ? poolTensor() : tensor()));
    return { value: items.map((x) => x.value), desc: `[${items.map((x) => x.desc).join(',')}]` };
  })());
  const bytes = (): Arg => {
    const count = rng.pick([0, 1, 2, 3, 4, 6, 8, 12, 16, 24]);
    let ab: ArrayBuffer;
    if (rng.chance(0.1)) ab = new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(count * 4, { maxByteLength: 256 });
    else ab = new ArrayBuffer(count * 4 + 8);
    buffers.push(ab);
    if (ab.byteLength) new Uint8Array(ab, 0, ab.byteLength).forEach((_, i, a) => (a[i] = rng.int(256)));
    switch (rng.int(8)) {
      case 0: return { value: new Float32Array(ab, 0, count), desc: `Float32Array(${count})` };
      case 1: return { value: new Uint8Array(ab, 3, count), desc: `Uint8Array(${count}, offset 3)` };
      case 2: return { value: new DataView(ab, 4, count), desc: `DataView(${count})` };
      case 3: return { value: ab, desc: `ArrayBuffer(${ab.byteLength})` };
      case 4: {
        const view = new Float64Array(ab, 0, Math.floor(count / 2));
        structuredClone(ab, { transfer: [ab] });
        return { value: view, desc: 'Float64Array(detached)' };
      }
      case 5: return { value: Buffer.from(ab, 0, count), desc: `Buffer(${count})` };
      case 6: return { value: new Int16Array(ab, 2, count), desc: `Int16Array(${count}, offset 2)` };
      default: return { value: new Float32Array(count).fill(rng.pick([NaN, 1, -0])), desc: `Float32Array(${count}) own buffer` };
    }
  };
  const forKind = (op: string, p: Param): Arg => {
    if (p.optional && rng.chance(0.2)) return rng.chance(0.5) ? { value: undefined, desc: 'undefined' } : { value: null, desc: 'null' };
    const special = dist.arg(op, p, rng);
    if (special) return special;
    if (p.kind === 'unknown' || rng.chance(0.06)) return anyValue();
    switch (p.kind) {
      case 'tensor': return tensor();
      case 'tensors': return tensors();
      case 'ints': return ints();
      case 'int': return intValue();
      case 'number': {
        const x = rng.chance(0.7) ? rng.pick(NUMBERS) : rng.pick(HOSTILE_NUMBERS);
        return { value: x, desc: describeNumber(x) };
      }
      case 'bool': return rng.chance(0.9) ? ((b) => ({ value: b, desc: String(b) }))(rng.chance(0.5)) : anyValue();
      case 'string': {
        const s = p.choices.length && rng.chance(0.85) ? rng.pick(p.choices) : rng.pick(HOSTILE_STRINGS);
        return { value: s, desc: JSON.stringify(s.length > 40 ? `${s.slice(0, 10)}...(${s.length})` : s) };
      }
      case 'dtype': {
        const s = rng.chance(0.9) ? rng.pick(DTYPES) : rng.pick(HOSTILE_STRINGS);
        return { value: s, desc: JSON.stringify(s.slice(0, 20)) };
      }
      case 'device': {
        const s = rng.pick(DEVICES);
        return { value: s, desc: JSON.stringify(s) };
      }
      case 'bytes': return bytes();
    }
  };

  // ---- the calls
  let returned = 0;
  let threw = 0;
  const threwByOp = new Map<string, number>();
  const reach = new Reach();
  for (let call = 0; call < calls; call++) {
    if (call % 500 === 0) {
      refill();
      dist.ensure();
    }
    const op = rng.pick(ops);
    const params = sigs.get(op)!;
    victims = [];
    buffers = [];
    temps = [];
    protoIndex = null;
    let args: Arg[];
    dist.beginCall(op, rng);
    try {
      if (rng.chance(0.03)) args = Array.from({ length: rng.int(params.length + 2) }, anyValue);
      else {
        args = params.map((p) => forKind(op, p));
        // Sometimes fewer arguments (trailing ones left out).
        if (rng.chance(0.1)) args = args.slice(0, rng.int(args.length + 1));
      }
    } catch {
      args = []; // a maker refused (e.g. a view past a small resizable buffer): call with none
    }
    say(`${call} ${op}(${args.map((a) => a.desc).join(', ')})`);
    // Hundreds of threads cannot start under the child's address-space cap (libtorch's
    // thread pool then waits for them forever), so valid counts above 8 are not asked for.
    if (op === 'setNumThreads' && typeof args[0]?.value === 'number' && (args[0].value as number) > 8 && (args[0].value as number) <= 4096) {
      say('skipped: a thread count the capped child cannot start');
      if (protoIndex !== null) delete (Array.prototype as unknown as Record<string, unknown>)[protoIndex];
      continue;
    }
    // Opening a TCP rendezvous store listens on, or connects to, a network port (where another
    // program's store may listen); test/distributed.test.ts covers it. The file store and
    // group of one (bench/fuzz-dist.ts) stand in for it.
    const skip = op === 'distStoreOpen' ? 'skipped: opens a network rendezvous' : dist.skip(op, args);
    if (skip) {
      say(skip);
      if (protoIndex !== null) delete (Array.prototype as unknown as Record<string, unknown>)[protoIndex];
      continue;
    }
    const live = dist.holdsLive(params, args);
    let result: unknown;
    let error: unknown;
    try {
      result = fns[op]!(...args.map((a) => a.value));
      returned++;
    } catch (e) {
      error = e;
      if (!(e instanceof Error)) {
        say(`NOT-AN-ERROR thrown by ${op}: ${String(e)}`);
        closeSync(log);
        process.exit(3);
      }
      threw++;
      threwByOp.set(op, (threwByOp.get(op) ?? 0) + 1);
      if (e instanceof TypeError) learn(op, e.message);
    } finally {
      if (protoIndex !== null) delete (Array.prototype as unknown as Record<string, unknown>)[protoIndex];
      for (const h of temps) f.dispose!(h);
    }
    const past = reach.record(op, params, error);
    dist.after(op, args, result, error === undefined, past, live);
    if (dist.claims(op)) result = undefined;
    if (Array.isArray(result)) for (const h of result) addResult(h, `${op}-result`);
    else addResult(result, `${op}-result`);
    while (extra.length > 48) {
      const e = extra.splice(rng.int(extra.length), 1)[0]!;
      f.dispose!(e.h);
      stale.push(e.h);
    }
    if (stale.length > 256) stale.splice(0, 128);
  }
  say('done');
  closeSync(log);
  dist.close();
  const learnt = [...sigs.values()].flat().filter((p) => p.kind !== 'unknown').length;
  const total = [...sigs.values()].flat().length;
  const reached = reach.names();
  const unreached = [...sigs].flatMap(([op, ps]) => ps.map((p) => `${op}.${p.name}`)).filter((n) => !reached.includes(n));
  const summary: ChildSummary = {
    calls, returned, threw, ops: ops.length, learnt, params: total,
    reached, unreached, collectiveOps: DistHarness.collectiveOps(sigs), collectiveRun: dist.ranOps(),
  };
  process.stdout.write(JSON.stringify(summary) + '\n');
}

// ---------------------------------------------------------------- the parent: runs children
/** The counts a child prints and the parent adds up. */
interface FuzzCounts {
  calls: number;
  returned: number;
  threw: number;
  ops: number;
  learnt: number;
  params: number;
}
/** What a child prints (one JSON line) when it finishes. */
interface ChildSummary extends FuzzCounts {
  /** 'op.param' for each parameter some call got to (bench/fuzz-reach.ts), and the others. */
  reached: string[];
  unreached: string[];
  /** The dist* ops that take a store, group, work item or reducer... */
  collectiveOps: string[];
  /** ...and those of them that got past their argument checks with one that was open. */
  collectiveRun: string[];
}
export interface FuzzCrash {
  seed: number;
  /** crash: a signal or a bad exit; hang: its log stood still; timeout: it ran too long; leak: it left its temporary files. */
  kind: 'crash' | 'hang' | 'timeout' | 'leak';
  signal: string | null;
  code: number | null;
  /** The call the child logged last: the one that crashed it. */
  lastCall: string;
  stderr: string;
}
export interface FuzzReport extends FuzzCounts {
  /** Parameters some call got to, of `params`; the others by name. */
  reached: number;
  notReached: string[];
  collectiveOps: string[];
  collectiveRun: string[];
  crashes: FuzzCrash[];
  seconds: number;
}
export interface FuzzOptions {
  seed: number;
  children: number;
  callsPerChild: number;
  /** Children run at once. */
  parallel?: number;
  /** Address-space cap for each child (ulimit -v, KiB), so giant shapes fail to allocate. */
  memoryKiB?: number;
  /** A child still running after this long counts as hung (reported as a crash). */
  timeoutMs?: number;
  /** A child whose log stands still this long is stuck in one call: killed, and reported as a hang. */
  stallMs?: number;
}

function lastLine(path: string): string {
  try {
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    return lines[lines.length - 1] ?? '';
  } catch {
    return '(no log)';
  }
}

/** One child process: its summary, or how it failed. */
function runOne(o: FuzzOptions, dir: string, seed: number): Promise<ChildSummary | FuzzCrash> {
  const logPath = join(dir, `child-${seed}.log`);
  const childDir = join(dir, `child-${seed}`);
  const script = `ulimit -v ${o.memoryKiB ?? 3_500_000} && exec "$0" "$@"`;
  const args = [__filename, '--child', `--seed=${seed}`, `--calls=${o.callsPerChild}`, `--log=${logPath}`, `--dir=${childDir}`];
  const child = spawn('/bin/sh', ['-c', script, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OMP_NUM_THREADS: '1' } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  let killed: 'hang' | 'timeout' | undefined;
  const kill = (why: 'hang' | 'timeout'): void => {
    killed ??= why;
    child.kill('SIGKILL');
  };
  const timer = setTimeout(() => kill('timeout'), o.timeoutMs ?? 120_000);
  // The child logs each call before making it: a log that stops growing is a call that does not return.
  let size = -1;
  let since = Date.now();
  const watch = setInterval(() => {
    const now = existsSync(logPath) ? statSync(logPath).size : -1;
    if (now !== size) [size, since] = [now, Date.now()];
    else if (Date.now() - since > (o.stallMs ?? 30_000)) kill('hang');
  }, 250);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(watch);
      const line = out.trim().split('\n').pop() ?? '';
      const failed = (kind: FuzzCrash['kind'], lastCall = lastLine(logPath)): FuzzCrash => ({ seed, kind, signal, code, lastCall, stderr: err.slice(-1500) });
      if (killed || code !== 0 || !line.startsWith('{')) resolve(failed(killed ?? 'crash'));
      else if (existsSync(childDir)) resolve(failed('leak', `left ${childDir}`));
      else resolve(JSON.parse(line) as ChildSummary);
    });
  });
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'simclr-fuzz-'));
  const report: FuzzReport = { calls: 0, returned: 0, threw: 0, ops: 0, learnt: 0, params: 0, reached: 0, notReached: [], collectiveOps: [], collectiveRun: [], crashes: [], seconds: 0 };
  const reached = new Set<string>();
  const unreached = new Set<string>();
  const ran = new Set<string>();
  const seeds = Array.from({ length: o.children }, (_, i) => o.seed + i);
  const workers = Array.from({ length: Math.max(1, o.parallel ?? 2) }, async () => {
    for (let s = seeds.shift(); s !== undefined; s = seeds.shift()) {
      const r = await runOne(o, dir, s);
      if ('kind' in r) {
        report.crashes.push(r);
        continue;
      }
      report.calls += r.calls;
      report.returned += r.returned;
      report.threw += r.threw;
      report.ops = r.ops;
      report.learnt = Math.max(report.learnt, r.learnt);
      report.params = r.params;
      report.collectiveOps = r.collectiveOps;
      for (const n of r.reached) reached.add(n);
      for (const n of r.unreached) unreached.add(n);
      for (const n of r.collectiveRun) ran.add(n);
    }
  });
  await Promise.all(workers);
  rmSync(dir, { recursive: true, force: true });
  report.reached = reached.size;
  report.notReached = [...unreached].filter((n) => !reached.has(n)).sort();
  report.collectiveRun = [...ran].sort();
  report.seconds = (Date.now() - t0) / 1000;
  return report;
}

export function describeCrash(c: FuzzCrash): string {
  const how = c.kind === 'crash' ? (c.signal ? `signal ${c.signal}` : `exit ${c.code}`) : c.kind;
  return `seed ${c.seed}: ${how} during: ${c.lastCall}\n${c.stderr}`;
}

/** The figures, as printed (name=value) and written to bench/results/fuzz.json. */
function fuzzFigures(r: FuzzReport, seed: number): Record<string, number> {
  return {
    fuzz_calls: r.calls,
    fuzz_crashes: r.crashes.length,
    fuzz_hangs: r.crashes.filter((c) => c.kind === 'hang' || c.kind === 'timeout').length,
    fuzz_ops: r.ops,
    fuzz_parameters: r.params,
    fuzz_parameters_reached: r.reached,
    fuzz_parameters_learnt: r.learnt,
    fuzz_collective_ops: r.collectiveOps.length,
    fuzz_collective_ops_run: r.collectiveRun.length,
    fuzz_returned: r.returned,
    fuzz_threw: r.threw,
    fuzz_seconds: Number(r.seconds.toFixed(1)),
    fuzz_seed: seed,
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const flag = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  if (argv.includes('--child')) {
    runChild(Number(flag('seed')), Number(flag('calls')), flag('log')!, flag('dir')!);
    return;
  }
  const total = Number(process.env.FUZZ_CALLS ?? 100_000);
  const seed = Number(process.env.FUZZ_SEED ?? 1);
  const o: FuzzOptions = { seed, children: Math.ceil(total / 5_000), callsPerChild: 5_000, parallel: 2, timeoutMs: 300_000, stallMs: 30_000, memoryKiB: 3_500_000 };
  const r = await runFuzz(o);
  for (const c of r.crashes) console.log(describeCrash(c));
  const figures = fuzzFigures(r, seed);
  for (const [name, value] of Object.entries(figures)) console.log(`${name}=${value}`);
  const notRun = r.collectiveOps.filter((op) => !r.collectiveRun.includes(op));
  console.log(`collective ops run with an open store, group, work item or reducer: ${r.collectiveRun.join(', ')}${notRun.length ? `; not run: ${notRun.join(', ')}` : ''}`);
  const file = writeBenchResults('fuzz', figures, {
    options: o,
    collectiveOpsRun: r.collectiveRun,
    collectiveOpsNotRun: notRun,
    parametersNotReached: r.notReached,
    failures: r.crashes.map(describeCrash),
  });
  console.log(`wrote ${file}`);
  if (r.crashes.length) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
