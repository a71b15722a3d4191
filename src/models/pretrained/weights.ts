// A weights file as a flat map of named tensors: safetensors (by its header) or a torch.save
// archive (nested dicts flattened with dots: {'resnet': {...}, 'head': {...}} gives
// resnet.conv1.weight, head.0.weight, ...).
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { parseHeader } from '../../torch/safetensors';
import * as t from '../../torch';
import type { Tensor } from '../../torch';
import { openTorchFile, WeightsFileError } from './torch-file';
import type { PickleValue, TensorRef } from './pickle';

function looksLikeSafetensors(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(9);
    if (readSync(fd, head, 0, 9, 0) < 9) return false;
    const n = head.readBigUInt64LE(0);
    return n > 1n && n < BigInt(statSync(file).size) && head[8] === 0x7b; // '{'
  } finally {
    closeSync(fd);
  }
}

function checkReadable(file: string): void {
  try {
    statSync(file);
  } catch (e) {
    throw new WeightsFileError(`${file}: cannot read the weights (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

const noTensors = (file: string) => new WeightsFileError(`${file}: no tensors in it (a state dict, or a dict of state dicts, is expected)`);

/**
 * The file's format and how many tensors it names, from the safetensors header or the
 * torch.save pickle, without reading a tensor (--dry-run's check of a weights file).
 */
export async function weightsFileSummary(file: string): Promise<{ format: 'safetensors' | 'torch.save'; tensors: number }> {
  checkReadable(file);
  if (looksLikeSafetensors(file)) {
    const fd = openSync(file, 'r');
    try {
      return { format: 'safetensors', tensors: parseHeader(file, fd, fstatSync(fd).size).entries.length };
    } catch (e) {
      throw new WeightsFileError((e as Error).message);
    } finally {
      closeSync(fd);
    }
  }
  const torchFile = await openTorchFile(file);
  const refs: [string, TensorRef][] = [];
  try {
    flatten(torchFile.root, '', refs, file);
  } finally {
    torchFile.close();
  }
  if (refs.length === 0) throw noTensors(file);
  return { format: 'torch.save', tensors: refs.length };
}

/** Every tensor of the file, by name (the caller disposes them). */
export async function readWeights(file: string): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> }> {
  checkReadable(file);
  if (looksLikeSafetensors(file)) {
    try {
      const loaded = t.loadSafetensors(file);
      return { tensors: loaded.tensors, metadata: loaded.metadata ?? {} };
    } catch (e) {
      throw new WeightsFileError((e as Error).message);
    }
  }
  const torchFile = await openTorchFile(file);
  const refs: [string, TensorRef][] = [];
  flatten(torchFile.root, '', refs, file);
  if (refs.length === 0) {
    torchFile.close();
    throw noTensors(file);
  }
  const tensors = new Map<string, Tensor>();
  // Shared storages may make a tensor appear twice; far more than the file holds is a trap.
  const budget = 2 * statSync(file).size + 2 ** 20;
  let bytes = 0;
  try {
    for (const [name, ref] of refs) {
      bytes += ref.size.reduce((a, b) => a * b, 1) * (ref.storage.dtype === 'int64' || ref.storage.dtype === 'float64' ? 8 : 4);
      if (bytes > budget) throw new WeightsFileError(`${file}: its tensors add up to more than twice the file's size: not a plain state dict`);
      tensors.set(name, await torchFile.tensor(ref, name));
    }
  } catch (e) {
    for (const v of tensors.values()) v.dispose();
    throw e;
  } finally {
    torchFile.close();
  }
  return { tensors, metadata: {} };
}

/** A state dict's nesting and size: deeper or larger is not a weights file (a pickle may share or loop its dicts). */
const MAX_DEPTH = 16;
const MAX_TENSORS = 100_000;

function flatten(v: PickleValue, prefix: string, out: [string, TensorRef][], file: string, within: Set<object> = new Set(), depth = 0): void {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return;
  if (v.kind === 'tensor') {
    if (out.length >= MAX_TENSORS) throw new WeightsFileError(`${file}: more than ${MAX_TENSORS} tensors: not a weights file`);
    out.push([prefix, v]);
    return;
  }
  if (v.kind !== 'dict') return;
  if (within.has(v) || depth > MAX_DEPTH) throw new WeightsFileError(`${file}: its dicts nest in a loop or deeper than ${MAX_DEPTH}: not a weights file`);
  within.add(v);
  for (const [k, x] of v.entries) flatten(x, prefix ? `${prefix}.${k}` : String(k), out, file, within, depth + 1);
  within.delete(v);
}
