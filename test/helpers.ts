// Shared test helpers: the PyTorch reference (Debian's python3-torch) and comparisons.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { loadSafetensors, saveSafetensors, type Tensor } from '../src';

export const PYTHON = process.env.SIMCLR_PYTHON ?? '/usr/bin/python3';
/** The shared data sets, beside the repository (../shared/datasets), or SIMCLR_DATASETS. */
export const DATASETS = process.env.SIMCLR_DATASETS ?? join(__dirname, '..', '..', '..', 'shared', 'datasets');
const SCRIPT = join(__dirname, '..', '..', 'test', 'py', 'reference.py');

export function tempDir(prefix = 'simclr-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Runs one case of test/py/reference.py on tensors shared through safetensors. */
export function reference(name: string, inputs: Record<string, Tensor>, args: object = {}): Map<string, Tensor> {
  const dir = tempDir();
  try {
    saveSafetensors(join(dir, 'in.safetensors'), inputs);
    const run = spawnSync(PYTHON, [SCRIPT, name, dir, JSON.stringify(args)], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`reference ${name} failed (${PYTHON}): ${run.error?.message ?? ''}${run.stderr}`);
    return loadSafetensors(join(dir, 'out.safetensors')).tensors;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** max |a - b| / max |b|, on float64 copies of the values. */
export function relativeError(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape, 'shapes differ');
  const x = a.toArray();
  const y = b.toArray();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < x.length; i++) {
    diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
    scale = Math.max(scale, Math.abs(y[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

export function assertClose(actual: Tensor, expected: Tensor, tolerance: number, label: string): void {
  const err = relativeError(actual, expected);
  assert.ok(err <= tolerance, `${label}: relative error ${err.toExponential(3)} > ${tolerance}`);
}

export function assertValues(actual: Tensor, expected: number[], tolerance = 1e-6, label = 'values'): void {
  const got = actual.toArray();
  assert.equal(got.length, expected.length, `${label}: ${got.length} values, expected ${expected.length}`);
  got.forEach((v, i) => {
    const e = expected[i]!;
    assert.ok(Math.abs(v - e) <= tolerance * Math.max(1, Math.abs(e)), `${label}[${i}] = ${v}, expected ${e}`);
  });
}
