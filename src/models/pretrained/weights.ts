// A weights file as a flat map of named tensors: safetensors (by its header) or a torch.save
// archive (nested dicts flattened with dots: {'resnet': {...}, 'head': {...}} gives
// resnet.conv1.weight, head.0.weight, ...).
import { closeSync, openSync, readSync, statSync } from 'node:fs';
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

/** Every tensor of the file, by name (the caller disposes them). */
export async function readWeights(file: string): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> }> {
  try {
    statSync(file);
  } catch (e) {
    throw new WeightsFileError(`${file}: cannot read the weights (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
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
    throw new WeightsFileError(`${file}: no tensors in it (a state dict, or a dict of state dicts, is expected)`);
  }
  const tensors = new Map<string, Tensor>();
  try {
    for (const [name, ref] of refs) tensors.set(name, await torchFile.tensor(ref, name));
  } catch (e) {
    for (const v of tensors.values()) v.dispose();
    throw e;
  } finally {
    torchFile.close();
  }
  return { tensors, metadata: {} };
}

function flatten(v: PickleValue, prefix: string, out: [string, TensorRef][], file: string): void {
  if (v === null || typeof v !== 'object') return;
  if (!Array.isArray(v) && v.kind === 'tensor') {
    out.push([prefix, v]);
    return;
  }
  if (!Array.isArray(v) && v.kind === 'dict') {
    for (const [k, x] of v.entries) flatten(x, prefix ? `${prefix}.${k}` : String(k), out, file);
  }
}
