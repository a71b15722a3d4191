// Checkpoints: tensors (model and optimiser state) in one safetensors file, everything
// else (epoch, step, config, the RNG state) in JSON; both written atomically, JSON last,
// so a checkpoint with a JSON file is always whole.
import { existsSync, readFileSync } from 'node:fs';
import * as t from '../torch';
import type { Tensor } from '../torch';
import type { Module } from '../nn';
import type { RunFolder } from './run-folder';
import { NonFiniteLossError } from './control';

export interface Stateful {
  stateDict(): Map<string, Tensor>;
  loadStateDict(state: Map<string, Tensor>): unknown;
}

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

/** Loads weights (and optimiser state, and the RNG state when restoreRng) from a checkpoint. */
export function loadCheckpoint(run: RunFolder, name: string, model: Module, optimizer: Stateful | null, { restoreRng = false } = {}): CheckpointMeta {
  if (!hasCheckpoint(run, name)) throw new Error(`${run.path(name)}: no checkpoint there (expected ${name}.json and ${name}.safetensors)`);
  const meta = JSON.parse(readFileSync(run.path(`${name}.json`), 'utf8')) as CheckpointMeta;
  const { tensors } = t.loadSafetensors(run.path(`${name}.safetensors`));
  try {
    const pick = (prefix: string) => new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
    model.loadStateDict(pick('model.'));
    if (optimizer) optimizer.loadStateDict(pick('optim.'));
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
