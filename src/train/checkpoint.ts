// Checkpoints: tensors (model and optimiser state) in one safetensors file, everything
// else (epoch, step, config, the RNG state) in JSON; both written atomically, JSON last,
// so a checkpoint with a JSON file is always whole.
import { closeSync, existsSync, fstatSync, openSync, readFileSync } from 'node:fs';
import * as t from '../torch';
import type { Tensor } from '../torch';
import { cut } from '../torch/quote';
import type { Module } from '../nn';
import type { RunFolder } from './run-folder';
import { NonFiniteLossError } from './control';
import { CheckpointError, MAX_META_BYTES, parseCheckpointMeta, type CheckpointMeta } from './checkpoint-meta';

export { CheckpointError, type CheckpointMeta } from './checkpoint-meta';

export interface Stateful {
  stateDict(): Map<string, Tensor>;
  loadStateDict(state: Map<string, Tensor>): unknown;
}

/** Refuses to overwrite a good checkpoint with weights that are NaN or infinite. */
export function saveCheckpoint(run: RunFolder, name: string, model: Module, optimizer: Stateful | null, meta: Omit<CheckpointMeta, 'rng' | 'time'>): void {
  const finite = t.tidy(() => model.parameters().every((p) => Number.isFinite(p.abs().sum().item())));
  if (!finite) throw new NonFiniteLossError(meta.stage, meta.step, 'weights');
  const tensors = new Map<string, Tensor>();
  for (const [k, v] of model.stateDict()) tensors.set(`model.${k}`, v);
  if (optimizer) for (const [k, v] of optimizer.stateDict()) tensors.set(`optim.${k}`, v);
  t.saveSafetensors(run.path(`${name}.safetensors`), tensors, { stage: meta.stage });
  const rng = t.getRngState();
  const full: CheckpointMeta = { ...meta, rng: rng.bytes().toString('base64'), time: new Date().toISOString() };
  rng.dispose();
  run.writeJson(`${name}.json`, full);
}

export function hasCheckpoint(run: RunFolder, name: string): boolean {
  return existsSync(run.path(`${name}.json`)) && existsSync(run.path(`${name}.safetensors`));
}

/** Size in bytes of this libtorch's CPU generator state (what a checkpoint's rng must hold). */
function rngStateBytes(): number {
  const state = t.getRngState();
  try {
    return state.numel;
  } finally {
    state.dispose();
  }
}

function readMeta(file: string): CheckpointMeta {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_META_BYTES) throw new CheckpointError(file, 'JSON', `is ${size} bytes, more than the ${MAX_META_BYTES} a checkpoint holds`);
    return parseCheckpointMeta(file, readFileSync(fd, 'utf8'), rngStateBytes());
  } finally {
    closeSync(fd);
  }
}

const PREFIXES = ['model.', 'optim.'];
const MAX_NAME = 256;
const FLOATS = new Set(['float32', 'float64', 'float16', 'bfloat16']);

/** Tensor names the checkpoint writer makes, and float optimiser state, or an error naming the tensor. */
function checkTensors(file: string, tensors: Map<string, Tensor>): void {
  for (const [name, v] of tensors) {
    if (name.length > MAX_NAME || !PREFIXES.some((p) => name.startsWith(p))) {
      throw new CheckpointError(file, `tensor '${cut(name)}'`, `is not a checkpoint tensor (names start with ${PREFIXES.join(' or ')}, up to ${MAX_NAME} characters)`);
    }
    if (name.startsWith('optim.') && !FLOATS.has(v.dtype)) throw new CheckpointError(file, `tensor '${name}'`, `is ${v.dtype}; optimiser state is floating point`);
  }
}

/** Loads weights (and optimiser state, and the RNG state when restoreRng) from a checkpoint. */
export function loadCheckpoint(run: RunFolder, name: string, model: Module, optimizer: Stateful | null, { restoreRng = false } = {}): CheckpointMeta {
  if (!hasCheckpoint(run, name)) throw new Error(`${run.path(name)}: no checkpoint there (expected ${name}.json and ${name}.safetensors)`);
  // Everything in the JSON is checked before the tensors are read or anything is loaded.
  const meta = readMeta(run.path(`${name}.json`));
  const weights = run.path(`${name}.safetensors`);
  const { tensors } = t.loadSafetensors(weights);
  try {
    checkTensors(weights, tensors);
    const pick = (prefix: string) => new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
    try {
      model.loadStateDict(pick('model.'));
      if (optimizer) optimizer.loadStateDict(pick('optim.'));
    } catch (e) {
      throw new Error(`${weights}: ${(e as Error).message}`);
    }
    if (restoreRng) {
      const bytes = Buffer.from(meta.rng, 'base64');
      const state = t.fromBytes(bytes, [bytes.length], 'uint8');
      t.setRngState(state);
      state.dispose();
    }
  } finally {
    for (const v of tensors.values()) v.dispose();
  }
  return meta;
}
