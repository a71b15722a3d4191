// Tensor factories: from JS data, constant fills, ranges and random draws.
import { native as n, type DType } from './native';
import { Tensor, wrap, type TypedArray } from './tensor';

export interface CreateOptions {
  dtype?: DType;
  device?: string;
  requiresGrad?: boolean;
}

function dtypeOf(data: TypedArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int8Array) return 'int8';
  return 'uint8';
}

function typedFor(values: number[], dtype: DType): TypedArray {
  switch (dtype) {
    case 'float64':
      return Float64Array.from(values);
    case 'int64':
      return BigInt64Array.from(values, (v) => BigInt(Math.trunc(v)));
    case 'int32':
      return Int32Array.from(values);
    case 'int16':
      return Int16Array.from(values);
    case 'int8':
      return Int8Array.from(values);
    case 'uint8':
    case 'bool':
      return Uint8Array.from(values);
    default:
      return Float32Array.from(values);
  }
}

function finish(t: Tensor, opts: CreateOptions): Tensor {
  let out = t;
  if (opts.device && opts.device !== 'cpu') {
    out = t.to(opts.device);
    t.dispose();
  }
  if (opts.requiresGrad) out.requiresGrad_(true);
  return out;
}

/**
 * A tensor from JS values: a typed array (its dtype follows the array) or nested number
 * arrays (float32 unless opts.dtype says otherwise). shape defaults to the data's shape.
 */
export function tensor(data: TypedArray | number | number[] | number[][] | number[][][] | number[][][][], shape?: number[], opts: CreateOptions = {}): Tensor {
  let values: TypedArray;
  let inferred: number[];
  if (ArrayBuffer.isView(data)) {
    values = data;
    inferred = [data.length];
    if (opts.dtype && opts.dtype !== dtypeOf(data)) {
      const t = wrap(n.fromBytes(data, inferred, dtypeOf(data)));
      const cast = t.to(opts.dtype);
      t.dispose();
      return finish(shape ? reshapeOwned(cast, shape) : cast, opts);
    }
  } else {
    inferred = nestedShape(data);
    const flatValues = (Array.isArray(data) ? (data as unknown[]).flat(Infinity) : [data]) as number[];
    for (const v of flatValues) {
      if (typeof v !== 'number') throw new TypeError(`tensor: data must hold only numbers, found ${typeof v}`);
    }
    const dtype = opts.dtype ?? 'float32';
    values = typedFor(flatValues, dtype === 'bfloat16' || dtype === 'float16' ? 'float32' : dtype);
    if (dtype === 'bfloat16' || dtype === 'float16' || dtype === 'bool') {
      const t = wrap(n.fromBytes(values, inferred, dtype === 'bool' ? 'uint8' : 'float32'));
      const cast = t.to(dtype);
      t.dispose();
      return finish(shape ? reshapeOwned(cast, shape) : cast, opts);
    }
  }
  const dims = shape ?? inferred;
  return finish(wrap(n.fromBytes(values, dims, dtypeOf(values))), opts);
}

function reshapeOwned(t: Tensor, shape: number[]): Tensor {
  const r = t.reshape(shape);
  t.dispose();
  return r;
}

function nestedShape(data: unknown): number[] {
  const shape: number[] = [];
  let cur: unknown = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0];
  }
  return shape;
}

/** A tensor over raw little-endian bytes (a copy), as stored in safetensors files. */
export function fromBytes(bytes: ArrayBufferView, shape: number[], dtype: DType): Tensor {
  return wrap(n.fromBytes(bytes, shape, dtype));
}

export const zeros = (shape: number[], o: CreateOptions = {}): Tensor => finish(wrap(n.zeros(shape, o.dtype, o.device)), { ...o, device: undefined });
export const ones = (shape: number[], o: CreateOptions = {}): Tensor => finish(wrap(n.ones(shape, o.dtype, o.device)), { ...o, device: undefined });
export const empty = (shape: number[], o: CreateOptions = {}): Tensor => finish(wrap(n.empty(shape, o.dtype, o.device)), { ...o, device: undefined });
export const full = (shape: number[], value: number, o: CreateOptions = {}): Tensor =>
  finish(wrap(n.full(shape, value, o.dtype, o.device)), { ...o, device: undefined });
export const eye = (size: number, o: CreateOptions = {}): Tensor => finish(wrap(n.eye(size, o.dtype, o.device)), { ...o, device: undefined });
export const arange = (start: number, end: number, step = 1, o: CreateOptions = {}): Tensor =>
  wrap(n.arange(start, end, step, o.dtype ?? 'int64', o.device));
export const linspace = (start: number, end: number, steps: number, o: CreateOptions = {}): Tensor =>
  wrap(n.linspace(start, end, steps, o.dtype, o.device));
export const zerosLike = (t: Tensor): Tensor => wrap(n.zerosLike(t.h));
export const onesLike = (t: Tensor): Tensor => wrap(n.onesLike(t.h));
export const fullLike = (t: Tensor, value: number): Tensor => wrap(n.fullLike(t.h, value));

/** Uniform [0, 1) draws from the seeded default generator. */
export const rand = (shape: number[], o: CreateOptions = {}): Tensor => finish(wrap(n.rand(shape, o.dtype, o.device)), { ...o, device: undefined });
/** Standard normal draws from the seeded default generator. */
export const randn = (shape: number[], o: CreateOptions = {}): Tensor => finish(wrap(n.randn(shape, o.dtype, o.device)), { ...o, device: undefined });
/** Integers in [low, high), int64 unless o.dtype says otherwise. */
export const randint = (low: number, high: number, shape: number[], o: CreateOptions = {}): Tensor =>
  wrap(n.randint(low, high, shape, o.dtype ?? null, o.device));
/** A random permutation of 0..count-1 (int64). */
export const randperm = (count: number, o: { device?: string } = {}): Tensor => wrap(n.randperm(count, o.device));
/** 0/1 draws with the given per-element probabilities (same dtype as p). */
export const bernoulli = (p: Tensor): Tensor => wrap(n.bernoulli(p.h));
/** 0/1 draws with probability p, shaped like `like`. */
export const bernoulliLike = (like: Tensor, p: number): Tensor => wrap(n.bernoulliP(like.h, p));

export function cat(tensors: Tensor[], dim = 0): Tensor {
  return wrap(n.cat(tensors.map((t) => t.h), dim));
}
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return wrap(n.stack(tensors.map((t) => t.h), dim));
}
export function where(condition: Tensor, a: Tensor, b: Tensor): Tensor {
  return wrap(n.where(condition.h, a.h, b.h));
}
