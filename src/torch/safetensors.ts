// safetensors files: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw little-endian data. Reading runs
// no code, and every number in the header is checked against the file before use.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { writeAll, writeAtomicWith } from '../util/fs';
import type { DType } from './native';
import { Tensor } from './tensor';
import { fromBytes } from './create';
import { cut, quote } from './quote';

/** Headers larger than this are refused (the reference implementation uses the same cap). */
export const MAX_HEADER_BYTES = 100_000_000;

// Maps, not objects: a dtype read from a file ("toString", "__proto__") must not find
// anything on Object.prototype.
const CODES = new Map<string, { dtype: DType; size: number }>([
  ['F64', { dtype: 'float64', size: 8 }],
  ['F32', { dtype: 'float32', size: 4 }],
  ['F16', { dtype: 'float16', size: 2 }],
  ['BF16', { dtype: 'bfloat16', size: 2 }],
  ['I64', { dtype: 'int64', size: 8 }],
  ['I32', { dtype: 'int32', size: 4 }],
  ['I16', { dtype: 'int16', size: 2 }],
  ['I8', { dtype: 'int8', size: 1 }],
  ['U8', { dtype: 'uint8', size: 1 }],
  ['BOOL', { dtype: 'bool', size: 1 }],
]);
const CODE_OF = new Map<DType, string>([...CODES].map(([code, v]) => [v.dtype, code]));

/** A tensor name from a file, quoted and cut for a message. */
const named = (name: string): string => `'${cut(name)}'`;

export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: not a valid safetensors file: ${detail}`);
    this.name = 'SafetensorsError';
  }
}

export interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: TensorEntry[];
  metadata: Record<string, string>;
  /** Byte position of the data section in the file. */
  dataStart: number;
}

function readExactly(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const got = readSync(fd, buf, done, length - done, position + done);
    if (got === 0) break;
    done += got;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/** Parses and checks a header; `fileSize` bounds every offset. */
export function parseHeader(file: string, fd: number, fileSize: number): SafetensorsHeader {
  const bad = (detail: string): never => {
    throw new SafetensorsError(file, detail);
  };
  if (fileSize < 8) bad(`the file has ${fileSize} bytes, fewer than the 8-byte header length`);
  const lenBytes = readExactly(fd, 8, 0);
  const headerLen = lenBytes.readBigUInt64LE(0);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) bad(`header length ${headerLen} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  const hl = Number(headerLen);
  if (8 + hl > fileSize) bad(`header length ${hl} runs past the end of the file (${fileSize} bytes)`);
  const headerBytes = readExactly(fd, hl, 8);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    bad(`the header is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) bad('the header is not a JSON object');
  const dataStart = 8 + hl;
  const dataSize = fileSize - dataStart;
  const metadata: [string, string][] = [];
  const entries: TensorEntry[] = [];
  // JSON.parse makes every key (even "__proto__") an own property, and Object.entries
  // lists exactly those, so no key reaches Object.prototype.
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) bad('__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') bad(`__metadata__.${cut(k)} must be a string, not ${quote(v)}`);
        metadata.push([k, v as string]);
      }
      continue;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) bad(`entry ${named(name)} is not an object`);
    const fields = raw as Record<string, unknown>;
    const field = (key: string): unknown => (Object.hasOwn(fields, key) ? fields[key] : undefined);
    const dtype = field('dtype');
    const shape = field('shape');
    const offsets = field('data_offsets');
    const code = typeof dtype === 'string' ? CODES.get(dtype) : undefined;
    if (!code) return bad(`tensor ${named(name)} has unsupported dtype ${quote(dtype)}`);
    if (!Array.isArray(shape) || shape.length > 16 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`tensor ${named(name)} has an invalid shape ${quote(shape)}`);
    }
    const dims = shape as number[];
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      bad(`tensor ${named(name)} has invalid data_offsets ${quote(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataSize) bad(`tensor ${named(name)} spans bytes ${begin}..${end}, outside the ${dataSize}-byte data section`);
    // Count bytes in BigInt so that a crafted shape cannot overflow into a small number.
    const expected = dims.reduce((acc, d) => acc * BigInt(d), 1n) * BigInt(code.size);
    if (expected !== BigInt(end - begin)) bad(`tensor ${named(name)} is ${dtype}${JSON.stringify(dims)} = ${expected} bytes, but its range holds ${end - begin}`);
    entries.push({ name, dtype: code.dtype, shape: dims, begin, end });
  }
  // The data section must be covered exactly: no overlaps, no holes.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin !== cursor) bad(`tensor ${named(e.name)} starts at byte ${e.begin}, expected ${cursor} (overlap or gap in the data section)`);
    cursor = e.end;
  }
  if (cursor !== dataSize) bad(`the data section has ${dataSize} bytes but the tensors cover ${cursor}`);
  // Object.fromEntries defines own properties, so a "__proto__" key stays plain data.
  return { entries, metadata: Object.fromEntries(metadata), dataStart };
}

export interface LoadedSafetensors {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** Reads every tensor of a safetensors file (CPU tensors; the caller owns them). */
export function loadSafetensors(file: string): LoadedSafetensors {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new Error(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const tensors = new Map<string, Tensor>();
  try {
    const size = fstatSync(fd).size;
    const { entries, metadata, dataStart } = parseHeader(file, fd, size);
    for (const e of entries) {
      const bytes = readExactly(fd, e.end - e.begin, dataStart + e.begin);
      if (bytes.length !== e.end - e.begin) throw new SafetensorsError(file, `tensor ${named(e.name)} was cut short while reading`);
      tensors.set(e.name, fromBytes(bytes, e.shape, e.dtype));
    }
    return { tensors, metadata };
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes tensors (moved to CPU, made contiguous) to a safetensors file, atomically: a
 * temporary file in the same folder is renamed over the target once complete.
 */
export function saveSafetensors(file: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  const items = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  // No prototype: a tensor named "__proto__" becomes a key like any other.
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of items) {
    if (name === '__metadata__') throw new Error(`saveSafetensors: '__metadata__' is reserved and cannot name a tensor`);
    const code = CODE_OF.get(t.dtype);
    if (!code) throw new Error(`saveSafetensors: tensor ${named(name)} has dtype ${t.dtype}, which safetensors cannot store`);
    const size = t.numel * CODES.get(code)!.size;
    header[name] = { dtype: code, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data section starts 8-byte aligned, as other writers do.
  json += ' '.repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));
  writeAtomicWith(file, (fd) => {
    writeAll(fd, len);
    writeAll(fd, headerBytes);
    // One tensor's bytes in memory at a time, so a large model is not copied whole.
    for (const [, t] of items) writeAll(fd, t.bytes());
  });
}

