// The Tensor class: a thin, typed face over the addon's handles.
import { native, type Handle, type DType, type MemoryFormat, type CompareOp } from './native';
import { track } from './scope';

export type { DType, MemoryFormat, CompareOp } from './native';
export type TypedArray = Float32Array | Float64Array | Uint8Array | Int8Array | Int16Array | Int32Array | BigInt64Array;

const n = native;

// The safety net: a tensor that outlives every scope is freed when the GC collects its
// Tensor object. Tensors inside scopes skip it, since registering costs more than a tiny op.
const collected = new FinalizationRegistry<Handle>((h) => n.dispose(h));

export class Tensor {
  /** @internal the addon handle; null once disposed */
  private handle: Handle | null;
  private guarded = false;

  /** @internal Wraps a handle the addon returned. Use the factory functions instead. */
  constructor(handle: Handle) {
    this.handle = handle;
    if (!track(this)) this.guard();
  }

  /** @internal Puts this tensor under the GC safety net. */
  guard(): void {
    if (this.guarded || this.handle === null) return;
    collected.register(this, this.handle, this);
    this.guarded = true;
  }

  /** @internal */
  get h(): Handle {
    if (this.handle === null) throw new Error('Tensor: used after dispose()');
    return this.handle;
  }

  /** @internal Points this tensor at another handle, freeing the old one (Module.to). */
  replaceWith(other: Tensor): void {
    const h = other.h;
    const wasGuarded = this.guarded;
    // A parameter stays a parameter, though its replacement was made under noGrad.
    const trainable = n.requiresGrad(this.h) || n.requiresGrad(h);
    this.dispose();
    this.handle = n.detach(h);
    if (trainable) n.setRequiresGrad(this.handle, true);
    other.dispose();
    if (wasGuarded) this.guard();
  }

  get isDisposed(): boolean {
    return this.handle === null;
  }

  dispose(): void {
    if (this.handle !== null) {
      n.dispose(this.handle);
      this.handle = null;
      if (this.guarded) {
        collected.unregister(this);
        this.guarded = false;
      }
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---------------------------------------------------------------- queries
  get shape(): number[] {
    return n.shape(this.h);
  }
  get dtype(): DType {
    return n.dtype(this.h);
  }
  get device(): string {
    return n.device(this.h);
  }
  get ndim(): number {
    return n.shape(this.h).length;
  }
  get numel(): number {
    return n.numel(this.h);
  }
  size(dim: number): number {
    const s = this.shape;
    const d = dim < 0 ? s.length + dim : dim;
    if (d < 0 || d >= s.length) throw new RangeError(`size: dim ${dim} out of range for a ${s.length}-d tensor`);
    return s[d]!;
  }
  strides(): number[] {
    return n.strides(this.h);
  }
  isContiguous(format: MemoryFormat = 'contiguous'): boolean {
    return n.isContiguous(this.h, format);
  }
  item(): number {
    return n.item(this.h);
  }

  /** Copies the values out as a typed array matching the dtype (float16/bfloat16 come back as float32). */
  data(): TypedArray {
    const dtype = this.dtype;
    if (dtype === 'float16' || dtype === 'bfloat16') {
      const wide = this.to('float32');
      try {
        return wide.data();
      } finally {
        wide.dispose();
      }
    }
    const buf = n.toBytes(this.h);
    return viewBytes(buf, dtype);
  }

  /** The raw little-endian bytes of the values (row-major, on the CPU), e.g. for files. */
  bytes(): Buffer {
    return n.toBytes(this.h);
  }

  /** Values as plain numbers (int64 converted with Number()). */
  toArray(): number[] {
    const d = this.data();
    return d instanceof BigInt64Array ? Array.from(d, (v) => Number(v)) : Array.from(d);
  }

  toString(): string {
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }

  // ---------------------------------------------------------------- conversion, layout
  to(target: DType | string): Tensor {
    return isDType(target) ? wrap(n.toDtype(this.h, target)) : wrap(n.toDevice(this.h, target));
  }
  float(): Tensor {
    return wrap(n.toDtype(this.h, 'float32'));
  }
  contiguous(format: MemoryFormat = 'contiguous'): Tensor {
    return wrap(n.contiguous(this.h, format));
  }
  channelsLast(): Tensor {
    return wrap(n.contiguous(this.h, 'channels_last'));
  }
  clone(format?: MemoryFormat): Tensor {
    return wrap(n.clone(this.h, format));
  }
  detach(): Tensor {
    return wrap(n.detach(this.h));
  }
  reshape(...shape: number[] | [number[]]): Tensor {
    return wrap(n.reshape(this.h, flat(shape)));
  }
  view(...shape: number[] | [number[]]): Tensor {
    return wrap(n.view(this.h, flat(shape)));
  }
  permute(...dims: number[] | [number[]]): Tensor {
    return wrap(n.permute(this.h, flat(dims)));
  }
  transpose(d0: number, d1: number): Tensor {
    return wrap(n.transpose(this.h, d0, d1));
  }
  /** Transpose of a 2-d tensor. */
  get T(): Tensor {
    return this.transpose(0, 1);
  }
  flatten(start = 0, end = -1): Tensor {
    return wrap(n.flatten(this.h, start, end));
  }
  squeeze(dim: number): Tensor {
    return wrap(n.squeeze(this.h, dim));
  }
  unsqueeze(dim: number): Tensor {
    return wrap(n.unsqueeze(this.h, dim));
  }
  expand(...shape: number[] | [number[]]): Tensor {
    return wrap(n.expand(this.h, flat(shape)));
  }
  repeat(...repeats: number[] | [number[]]): Tensor {
    return wrap(n.repeat(this.h, flat(repeats)));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return wrap(n.narrow(this.h, dim, start, length));
  }
  slice(dim: number, start: number, end: number = Number.MAX_SAFE_INTEGER, step = 1): Tensor {
    return wrap(n.slice(this.h, dim, start, end, step));
  }
  select(dim: number, index: number): Tensor {
    return wrap(n.select(this.h, dim, index));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return wrap(n.indexSelect(this.h, dim, index.h));
  }
  gather(dim: number, index: Tensor): Tensor {
    return wrap(n.gather(this.h, dim, index.h));
  }
  scatter(dim: number, index: Tensor, source: Tensor): Tensor {
    return wrap(n.scatter(this.h, dim, index.h, source.h));
  }
  /** Adds source into a copy of this tensor at index along dim (repeated indices accumulate). */
  scatterAdd(dim: number, index: Tensor, source: Tensor): Tensor {
    return wrap(n.scatterAdd(this.h, dim, index.h, source.h));
  }
  maskedSelect(mask: Tensor): Tensor {
    return wrap(n.maskedSelect(this.h, mask.h));
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    return wrap(n.maskedFill(this.h, mask.h, value));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return n.chunk(this.h, chunks, dim).map(wrap);
  }
  split(size: number, dim = 0): Tensor[] {
    return n.split(this.h, size, dim).map(wrap);
  }
  flip(...dims: number[] | [number[]]): Tensor {
    return wrap(n.flip(this.h, flat(dims)));
  }
  roll(shifts: number[], dims: number[]): Tensor {
    return wrap(n.roll(this.h, shifts, dims));
  }
  diagonal(offset = 0, d0 = 0, d1 = 1): Tensor {
    return wrap(n.diagonal(this.h, offset, d0, d1));
  }
  tril(diagonal = 0): Tensor {
    return wrap(n.tril(this.h, diagonal));
  }
  oneHot(classes: number): Tensor {
    return wrap(n.oneHot(this.h, classes));
  }

  // ---------------------------------------------------------------- arithmetic
  add(other: Tensor | number, alpha?: number): Tensor {
    if (typeof other === 'number') return wrap(n.addScalar(this.h, alpha === undefined ? other : other * alpha));
    return wrap(n.add(this.h, other.h, alpha));
  }
  sub(other: Tensor | number, alpha?: number): Tensor {
    if (typeof other === 'number') return wrap(n.addScalar(this.h, -(alpha === undefined ? other : other * alpha)));
    return wrap(n.sub(this.h, other.h, alpha));
  }
  /** other - this */
  rsub(other: number): Tensor {
    return wrap(n.rsubScalar(this.h, other));
  }
  mul(other: Tensor | number): Tensor {
    return typeof other === 'number' ? wrap(n.mulScalar(this.h, other)) : wrap(n.mul(this.h, other.h));
  }
  div(other: Tensor | number): Tensor {
    return typeof other === 'number' ? wrap(n.divScalar(this.h, other)) : wrap(n.div(this.h, other.h));
  }
  pow(exponent: Tensor | number): Tensor {
    return typeof exponent === 'number' ? wrap(n.pow(this.h, exponent)) : wrap(n.powTensor(this.h, exponent.h));
  }
  neg(): Tensor {
    return wrap(n.neg(this.h));
  }
  exp(): Tensor {
    return wrap(n.exp(this.h));
  }
  log(): Tensor {
    return wrap(n.log(this.h));
  }
  sqrt(): Tensor {
    return wrap(n.sqrt(this.h));
  }
  rsqrt(): Tensor {
    return wrap(n.rsqrt(this.h));
  }
  abs(): Tensor {
    return wrap(n.abs(this.h));
  }
  tanh(): Tensor {
    return wrap(n.tanh(this.h));
  }
  sin(): Tensor {
    return wrap(n.sin(this.h));
  }
  cos(): Tensor {
    return wrap(n.cos(this.h));
  }
  floor(): Tensor {
    return wrap(n.floor(this.h));
  }
  round(): Tensor {
    return wrap(n.round(this.h));
  }
  remainder(divisor: number): Tensor {
    return wrap(n.remainder(this.h, divisor));
  }
  maximum(other: Tensor): Tensor {
    return wrap(n.maximum(this.h, other.h));
  }
  minimum(other: Tensor): Tensor {
    return wrap(n.minimum(this.h, other.h));
  }
  clamp(min?: number | Tensor | null, max?: number | Tensor | null): Tensor {
    if (min instanceof Tensor || max instanceof Tensor) {
      return wrap(n.clampTensor(this.h, min instanceof Tensor ? min.h : null, max instanceof Tensor ? max.h : null));
    }
    return wrap(n.clamp(this.h, min, max));
  }
  clampMin(min: number): Tensor {
    return wrap(n.clamp(this.h, min, null));
  }
  lerp(end: Tensor, weight: Tensor): Tensor {
    return wrap(n.lerp(this.h, end.h, weight.h));
  }
  private cmp(op: CompareOp, other: Tensor | number): Tensor {
    return typeof other === 'number' ? wrap(n.compareScalar(this.h, op, other)) : wrap(n.compare(this.h, op, other.h));
  }
  eq(other: Tensor | number): Tensor {
    return this.cmp('eq', other);
  }
  ne(other: Tensor | number): Tensor {
    return this.cmp('ne', other);
  }
  lt(other: Tensor | number): Tensor {
    return this.cmp('lt', other);
  }
  le(other: Tensor | number): Tensor {
    return this.cmp('le', other);
  }
  gt(other: Tensor | number): Tensor {
    return this.cmp('gt', other);
  }
  ge(other: Tensor | number): Tensor {
    return this.cmp('ge', other);
  }
  logicalNot(): Tensor {
    return wrap(n.logicalNot(this.h));
  }
  logicalAnd(other: Tensor): Tensor {
    return wrap(n.logicalAnd(this.h, other.h));
  }

  // ---------------------------------------------------------------- reductions
  sum(dims?: number | number[], keepdim = false): Tensor {
    return dims === undefined ? wrap(n.sumAll(this.h)) : wrap(n.sum(this.h, dimList(dims), keepdim));
  }
  mean(dims?: number | number[], keepdim = false): Tensor {
    return dims === undefined ? wrap(n.meanAll(this.h)) : wrap(n.mean(this.h, dimList(dims), keepdim));
  }
  var(dims: number | number[], { unbiased = true, keepdim = false } = {}): Tensor {
    return wrap(n.var(this.h, dimList(dims), unbiased, keepdim));
  }
  /** p-norm over dims (all dims when omitted). */
  norm(p = 2, dims: number | number[] = [], keepdim = false): Tensor {
    return wrap(n.norm(this.h, p, dimList(dims), keepdim));
  }
  amax(dims: number | number[], keepdim = false): Tensor {
    return wrap(n.amax(this.h, dimList(dims), keepdim));
  }
  amin(dims: number | number[], keepdim = false): Tensor {
    return wrap(n.amin(this.h, dimList(dims), keepdim));
  }
  /** Maximum along dim, with the indices where it occurs. */
  maxDim(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [v, i] = n.maxDim(this.h, dim, keepdim);
    return { values: wrap(v), indices: wrap(i) };
  }
  argmax(dim: number, keepdim = false): Tensor {
    return wrap(n.argmax(this.h, dim, keepdim));
  }
  logsumexp(dims: number | number[], keepdim = false): Tensor {
    return wrap(n.logsumexp(this.h, dimList(dims), keepdim));
  }
  topk(k: number, dim = -1, largest = true, sorted = true): { values: Tensor; indices: Tensor } {
    const [v, i] = n.topk(this.h, k, dim, largest, sorted);
    return { values: wrap(v), indices: wrap(i) };
  }
  sort(dim = -1, descending = false): { values: Tensor; indices: Tensor } {
    const [v, i] = n.sort(this.h, dim, descending);
    return { values: wrap(v), indices: wrap(i) };
  }

  // ---------------------------------------------------------------- linear algebra, activations
  matmul(other: Tensor): Tensor {
    return wrap(n.matmul(this.h, other.h));
  }
  relu(): Tensor {
    return wrap(n.relu(this.h));
  }
  sigmoid(): Tensor {
    return wrap(n.sigmoid(this.h));
  }
  softmax(dim: number): Tensor {
    return wrap(n.softmax(this.h, dim));
  }
  logSoftmax(dim: number): Tensor {
    return wrap(n.logSoftmax(this.h, dim));
  }

  // ---------------------------------------------------------------- in place (they return this)
  add_(other: Tensor | number, alpha?: number): this {
    if (typeof other === 'number') n.addScalar_(this.h, alpha === undefined ? other : other * alpha);
    else n.add_(this.h, other.h, alpha);
    return this;
  }
  sub_(other: Tensor | number, alpha = 1): this {
    return this.add_(other, -alpha);
  }
  mul_(other: Tensor | number): this {
    if (typeof other === 'number') n.mulScalar_(this.h, other);
    else n.mul_(this.h, other.h);
    return this;
  }
  addcmul_(a: Tensor, b: Tensor, value = 1): this {
    n.addcmul_(this.h, a.h, b.h, value);
    return this;
  }
  addcdiv_(a: Tensor, b: Tensor, value = 1): this {
    n.addcdiv_(this.h, a.h, b.h, value);
    return this;
  }
  copy_(source: Tensor): this {
    n.copy_(this.h, source.h);
    return this;
  }
  zero_(): this {
    n.zero_(this.h);
    return this;
  }
  fill_(value: number): this {
    n.fill_(this.h, value);
    return this;
  }
  clamp_(min?: number | null, max?: number | null): this {
    n.clamp_(this.h, min, max);
    return this;
  }
  relu_(): this {
    n.relu_(this.h);
    return this;
  }
  normal_(mean = 0, std = 1): this {
    n.normal_(this.h, mean, std);
    return this;
  }
  uniform_(low = 0, high = 1): this {
    n.uniform_(this.h, low, high);
    return this;
  }

  // ---------------------------------------------------------------- autograd
  get requiresGrad(): boolean {
    return n.requiresGrad(this.h);
  }
  /** Marks a leaf tensor as needing gradients (in place); returns this. */
  requiresGrad_(on = true): this {
    n.setRequiresGrad(this.h, on);
    return this;
  }
  get isLeaf(): boolean {
    return n.isLeaf(this.h);
  }
  /** The accumulated gradient, or null. Each read returns a new handle on the same memory. */
  get grad(): Tensor | null {
    const g = n.grad(this.h);
    return g === null ? null : wrap(g);
  }
  set grad(g: Tensor | null) {
    n.setGrad(this.h, g === null ? null : g.h);
  }
  /** Backpropagates from this tensor; a non-scalar needs the gradient of the output. */
  backward(gradient?: Tensor, { retainGraph = false } = {}): void {
    n.backward(this.h, gradient?.h ?? null, retainGraph);
  }
}

// ------------------------------------------------------------------ helpers
export function wrap(h: Handle): Tensor {
  return new Tensor(h);
}

function flat(xs: number[] | [number[]]): number[] {
  return xs.length === 1 && Array.isArray(xs[0]) ? xs[0] : (xs as number[]);
}

function dimList(d: number | number[]): number[] {
  return typeof d === 'number' ? [d] : d;
}

const DTYPES = new Set(['float32', 'float64', 'float16', 'bfloat16', 'uint8', 'int8', 'int16', 'int32', 'int64', 'bool']);
export function isDType(x: string): x is DType {
  return DTYPES.has(x);
}

function viewBytes(buf: Buffer, dtype: DType): TypedArray {
  const { buffer, byteOffset, byteLength } = buf;
  switch (dtype) {
    case 'float32':
      return new Float32Array(buffer, byteOffset, byteLength / 4);
    case 'float64':
      return new Float64Array(buffer, byteOffset, byteLength / 8);
    case 'int64':
      return new BigInt64Array(buffer, byteOffset, byteLength / 8);
    case 'int32':
      return new Int32Array(buffer, byteOffset, byteLength / 4);
    case 'int16':
      return new Int16Array(buffer, byteOffset, byteLength / 2);
    case 'int8':
      return new Int8Array(buffer, byteOffset, byteLength);
    default:
      return new Uint8Array(buffer, byteOffset, byteLength);
  }
}
