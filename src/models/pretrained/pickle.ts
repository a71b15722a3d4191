// An allow-list unpickler for what torch.save writes for a state dict (protocol 2, and the
// protocol 4 opcodes newer PyTorch may use): dicts (OrderedDict too), lists, tuples, numbers,
// strings, and tensors rebuilt by torch._utils._rebuild_tensor_v2 from storages named by
// persistent ids. Any other global or opcode is refused with the file and position; every
// stack and memo access is checked, so a hostile file can only fail with a message.

/** A tensor as the pickle describes it; its bytes are read later, from its storage entry. */
export interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  size: number[];
  stride: number[];
}

export interface StorageRef {
  kind: 'storage';
  dtype: PickleDType;
  /** the storage's record name in the archive (data/<key>) */
  key: string;
  /** elements in the storage */
  numel: number;
}

export type PickleDType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export type PickleValue = null | boolean | number | string | PickleValue[] | PickleTuple | PickleDict | TensorRef | StorageRef | PickleGlobal;
export interface PickleTuple {
  kind: 'tuple';
  items: PickleValue[];
}
export interface PickleDict {
  kind: 'dict';
  entries: Map<string | number, PickleValue>;
}
interface PickleGlobal {
  kind: 'global';
  name: string;
}
interface Mark {
  kind: 'mark';
}

const STORAGES: Record<string, PickleDType> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/** The globals a weights file may name, and nothing else. */
const ALLOWED_GLOBALS = new Set(['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter', ...Object.keys(STORAGES).map((s) => `torch.${s}`)]);

export class PickleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PickleError';
  }
}

/** Bounds on what a pickle may build: a state dict has thousands of entries, not millions. */
const MAX_STACK = 1 << 20;
const MAX_OBJECTS = 1 << 22;

export function unpickle(bytes: Uint8Array, where: string): PickleValue {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const stack: (PickleValue | Mark)[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  const fail = (msg: string): never => {
    throw new PickleError(`${where}: ${msg} (at byte ${pos})`);
  };
  const need = (n: number): void => {
    if (!(n >= 0) || pos + n > buf.length) fail('the pickle ends early');
  };
  const u8 = (): number => (need(1), buf[pos++]!);
  const u16 = (): number => (need(2), (pos += 2), buf.readUInt16LE(pos - 2));
  const u32 = (): number => (need(4), (pos += 4), buf.readUInt32LE(pos - 4));
  const i32 = (): number => (need(4), (pos += 4), buf.readInt32LE(pos - 4));
  const u64 = (): number => {
    need(8);
    const v = buf.readBigUInt64LE(pos);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('a length too large');
    return Number(v);
  };
  const text = (n: number): string => (need(n), (pos += n), buf.toString('utf8', pos - n, pos));
  const line = (): string => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) fail('the pickle ends early');
    const s = buf.toString('utf8', pos, end);
    pos = end + 1;
    return s;
  };
  const pop = (): PickleValue => {
    if (stack.length === 0 || (marks.length && stack.length <= marks.at(-1)!)) fail('the pickle pops an empty stack');
    const v = stack.pop()!;
    if ((v as Mark | null)?.kind === 'mark') fail('the pickle pops a mark');
    return v as PickleValue;
  };
  const top = (): PickleValue => {
    if (stack.length === 0 || (marks.length && stack.length <= marks.at(-1)!)) fail('the pickle reads an empty stack');
    return stack[stack.length - 1] as PickleValue;
  };
  const popMark = (): PickleValue[] => {
    if (marks.length === 0) fail('the pickle has no mark to pop to');
    const at = marks.pop()!;
    return stack.splice(at) as PickleValue[];
  };
  let objects = 0;
  const push = (v: PickleValue): void => {
    if (stack.length > MAX_STACK || ++objects > MAX_OBJECTS) fail('the pickle builds more than a weights file holds');
    stack.push(v);
  };
  const long = (n: number): number => {
    need(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[pos + i]!);
    if (n > 0 && buf[pos + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    pos += n;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) fail('an integer too large');
    return Number(v);
  };
  const global = (module: string, name: string): PickleGlobal => {
    const full = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(full)) fail(`it names ${full}, which a weights file has no need of: refused (only state dicts of tensors are read)`);
    return { kind: 'global', name: full };
  };
  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('an unknown pickle protocol');
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) fail('the pickle ends with a stack that is not one value');
        return pop();
      case 0x28: // MARK
        if (marks.length > MAX_STACK) fail('the pickle builds more than a weights file holds');
        marks.push(stack.length);
        break;
      case 0x7d: // EMPTY_DICT
        push({ kind: 'dict', entries: new Map() });
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        push({ kind: 'tuple', items: [] });
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = op - 0x84;
        const items: PickleValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        push({ kind: 'tuple', items });
        break;
      }
      case 0x74: // TUPLE
        push({ kind: 'tuple', items: popMark() });
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
        push(long(u8()));
        break;
      case 0x47: // BINFLOAT
        need(8);
        push(buf.readDoubleBE(pos));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        push(text(u64()));
        break;
      case 0x55: // SHORT_BINSTRING
        push(text(u8()));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`the pickle reads memo ${k}, which was never stored`);
        push(memo.get(k)!);
        break;
      }
      case 0x63: // GLOBAL
        push(global(line(), line()));
        break;
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof name !== 'string' || typeof module !== 'string') fail('STACK_GLOBAL without two names');
        push(global(module as string, name as string));
        break;
      }
      case 0x51: // BINPERSID
        push(persistent(pop(), fail));
        break;
      case 0x52: {
        // REDUCE
        const args = pop();
        const f = pop();
        push(reduce(f, args, fail));
        break;
      }
      case 0x62: // BUILD: the state of an OrderedDict (a state dict's _metadata) is not needed
        pop();
        if (stack.length === 0) fail('BUILD with nothing to build');
        break;
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v], fail);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items, fail);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) fail('APPEND to something not a list');
        (list as PickleValue[]).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) fail('APPENDS to something not a list');
        for (const v of items) (list as PickleValue[]).push(v);
        objects += items.length;
        break;
      }
      default:
        fail(`pickle opcode 0x${op.toString(16)} is not one a weights file uses: refused`);
    }
  }
}

function setItems(target: PickleValue, items: PickleValue[], fail: (m: string) => never): void {
  if ((target as PickleDict | null)?.kind !== 'dict') fail('SETITEMS on something not a dict');
  if (items.length % 2) fail('SETITEMS with an odd number of items');
  const dict = target as PickleDict;
  for (let i = 0; i < items.length; i += 2) {
    const k = items[i]!;
    if (typeof k !== 'string' && typeof k !== 'number') fail('a dict key that is not a string or number');
    dict.entries.set(k as string | number, items[i + 1]!);
  }
}

/** ('storage', torch.FloatStorage, key, location, numel): a storage in the archive. */
function persistent(id: PickleValue, fail: (m: string) => never): StorageRef {
  const items = (id as PickleTuple | null)?.kind === 'tuple' ? (id as PickleTuple).items : null;
  if (!items || items.length < 5 || items[0] !== 'storage') fail('a persistent id that is not a storage');
  const type = items![1] as PickleGlobal;
  const key = items![2];
  const numel = items![4];
  if (type?.kind !== 'global' || !type.name.startsWith('torch.')) fail('a storage of an unknown type');
  const dtype = STORAGES[type.name.slice(6)];
  if (!dtype) fail(`a storage of type ${type.name}`);
  if (typeof key !== 'string' || !/^[A-Za-z0-9_]{1,64}$/.test(key)) fail('a storage key that is not a plain name');
  if (typeof numel !== 'number' || !Number.isInteger(numel) || numel < 0) fail('a storage size that is not a count');
  return { kind: 'storage', dtype: dtype!, key: key as string, numel: numel as number };
}

const ints = (v: PickleValue): number[] | null => {
  const items = (v as PickleTuple | null)?.kind === 'tuple' ? (v as PickleTuple).items : null;
  return items && items.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0) ? (items as number[]) : null;
};

function reduce(f: PickleValue, args: PickleValue, fail: (m: string) => never): PickleValue {
  const name = (f as PickleGlobal | null)?.kind === 'global' ? (f as PickleGlobal).name : fail('REDUCE of something not callable');
  const a = (args as PickleTuple | null)?.kind === 'tuple' ? (args as PickleTuple).items : fail('REDUCE without an argument tuple');
  if (name === 'collections.OrderedDict') return { kind: 'dict', entries: new Map() };
  if (name === 'torch._utils._rebuild_parameter') {
    const data = a[0] as TensorRef;
    if (data?.kind !== 'tensor') fail('a parameter without its tensor');
    return data;
  }
  if (name === 'torch._utils._rebuild_tensor_v2') {
    const storage = a[0] as StorageRef;
    const offset = a[1];
    const size = ints(a[2]!);
    const stride = ints(a[3]!);
    if (storage?.kind !== 'storage') fail('a tensor without its storage');
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) fail('a tensor offset that is not a count');
    if (!size || !stride || size.length !== stride.length || size.length > 8) fail('a tensor shape or stride that is not a short list of counts');
    return { kind: 'tensor', storage, offset: offset as number, size: size!, stride: stride! };
  }
  return fail(`REDUCE of ${name}`);
}
