// A checkpoint's JSON read as hostile input: every field is checked for type and range
// before any of it is used, and an error names the file and the field. Nothing from the
// file is looked up on a plain object, so "__proto__" or "constructor" keys are just
// unknown fields.
import { cut, quote } from '../torch/quote';

export interface CheckpointMeta {
  /** epochs completed */
  epoch: number;
  /** batches of the next epoch already done (a checkpoint made by Ctrl-C mid-epoch) */
  batch?: number;
  /** optimiser steps taken */
  step: number;
  stage: string;
  config: unknown;
  /** libtorch CPU generator state, base64 */
  rng: string;
  time: string;
}

/** A checkpoint file that cannot be used; `field` is where in it the problem is. */
export class CheckpointError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    detail: string,
  ) {
    super(`${file}: not a usable checkpoint: ${field} ${detail}`);
    this.name = 'CheckpointError';
  }
}

/** Checkpoint JSON is small (counters, the config, 7 KB of RNG state); more is refused unread. */
export const MAX_META_BYTES = 16 * 2 ** 20;
const MAX_CONFIG_DEPTH = 32;
const FIELDS = new Set(['epoch', 'batch', 'step', 'stage', 'config', 'rng', 'time']);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Parses and checks checkpoint JSON. `rngBytes` is the size of this libtorch's generator
 * state: a state of any other size is refused here rather than handed to libtorch.
 */
export function parseCheckpointMeta(file: string, text: string, rngBytes: number): CheckpointMeta {
  const bad = (field: string, detail: string): never => {
    throw new CheckpointError(file, field, detail);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return bad('JSON', `does not parse (${cut((e as Error).message)})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return bad('JSON', `must be an object, not ${quote(raw)}`);
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) if (!FIELDS.has(key)) bad(`field ${quote(key)}`, 'is not a checkpoint field');
  const get = (key: string): unknown => {
    if (!Object.hasOwn(obj, key)) bad(`field '${key}'`, 'is missing');
    return obj[key];
  };
  const count = (key: string, optional = false): number | undefined => {
    if (optional && !Object.hasOwn(obj, key)) return undefined;
    const v = get(key);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`field '${key}'`, `must be a whole number >= 0, not ${quote(v)}`);
    return v as number;
  };
  const string = (key: string, max: number): string => {
    const v = get(key);
    if (typeof v !== 'string' || v.length === 0 || v.length > max) bad(`field '${key}'`, `must be a string of 1 to ${max} characters, not ${quote(v)}`);
    return v as string;
  };
  const meta: CheckpointMeta = {
    epoch: count('epoch')!,
    step: count('step')!,
    stage: string('stage', 200),
    config: checkConfig(get('config'), (detail) => bad("field 'config'", detail)),
    rng: checkRng(string('rng', 4 * Math.ceil(rngBytes / 3)), rngBytes, (detail) => bad("field 'rng'", detail)),
    time: string('time', 64),
  };
  const batch = count('batch', true);
  if (batch !== undefined) meta.batch = batch;
  if (!Number.isFinite(Date.parse(meta.time))) bad("field 'time'", `must be a date, not ${quote(meta.time)}`);
  return meta;
}

/** The config as written: a JSON object, without "__proto__" keys, not absurdly deep. */
function checkConfig(config: unknown, bad: (detail: string) => never): unknown {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) bad(`must be an object, not ${quote(config)}`);
  const walk = (v: unknown, path: string, depth: number): void => {
    if (v === null || typeof v !== 'object') return;
    if (depth > MAX_CONFIG_DEPTH) bad(`nests deeper than ${MAX_CONFIG_DEPTH} levels at ${cut(path)}`);
    for (const [k, x] of Object.entries(v)) {
      // Spread or Object.assign of such an object would set a prototype.
      if (k === '__proto__') bad(`holds a "__proto__" key at ${cut(path)}`);
      walk(x, `${path}.${k}`, depth + 1);
    }
  };
  walk(config, 'config', 0);
  return config;
}

/** Base64 of exactly `size` bytes; for the known libtorch layout, mt19937's counters in range. */
function checkRng(rng: string, size: number, bad: (detail: string) => never): string {
  if (!BASE64.test(rng)) bad('is not base64');
  const bytes = Buffer.from(rng, 'base64');
  if (bytes.length !== size) bad(`holds ${bytes.length} bytes; this libtorch's generator state has ${size}`);
  // libtorch 1.13's CPUGeneratorImplState: seed (u64), left (i32), seeded (i32), next (u64), 624 x u64 ...
  if (size === 5056) {
    const left = bytes.readInt32LE(8);
    const seeded = bytes.readInt32LE(12);
    const next = bytes.readBigUInt64LE(16);
    if (seeded !== 1 || left < 1 || left > 624 || next > 624n) bad(`is not a valid mt19937 state (left ${left}, seeded ${seeded}, next ${next})`);
  }
  return rng;
}
