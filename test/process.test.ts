// Importing simclr-ts leaves the host process as it was; tuneProcess() is the one call
// that sets OpenBLAS's kernels and the allocator. Each case runs in a fresh child, since
// both settings are process-wide and this test process must not be changed by them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers';

const INDEX = join(__dirname, '..', 'src', 'index.js');
const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');

// Preloaded into the child: any child process it tries to start is logged and refused.
const GUARD = `
const cp = require('node:child_process');
const fs = require('node:fs');
for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
  cp[name] = (...args) => {
    fs.appendFileSync(process.env.SPAWN_LOG, name + ' ' + String(args[0]) + '\\n');
    throw new Error('child process refused by the test');
  };
}`;

// In the child: how much of a freed 128 MB tensor glibc gave back (about 1 with glibc's
// defaults, about 0 with freed memory kept), and whether libtorch is mapped yet.
const PROBES = `
const fs = require('node:fs');
const libtorchLoaded = () => fs.readFileSync('/proc/self/maps', 'utf8').includes('libtorch');
const returnedFraction = (t) => {
  const rss = () => process.memoryUsage().rss;
  const x = t.zeros([32 * 2 ** 20]);
  x.sum().item();
  const held = rss();
  x.dispose();
  return (held - rss()) / (128 * 2 ** 20);
};
const report = (o) => process.stdout.write(JSON.stringify(o) + '\\n');`;

interface Child {
  out: Record<string, unknown>;
  cache: string[];
  spawned: string;
}

/**
 * Runs `code` (after PROBES) in a child with a fresh SIMCLR_CACHE and no inherited BLAS
 * or allocator settings; with `guard`, any child process it starts is refused and logged.
 */
function child(code: string, { guard = true, env = {} as NodeJS.ProcessEnv } = {}): Child {
  const dir = tempDir('simclr-process-');
  try {
    const cache = join(dir, 'cache');
    const guardFile = join(dir, 'guard.js');
    const log = join(dir, 'spawn.log');
    writeFileSync(guardFile, GUARD);
    writeFileSync(log, '');
    const base: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['OPENBLAS_CORETYPE', 'SIMCLR_BLAS_CHOICE', 'SIMCLR_BLAS_PROBE', 'SIMCLR_SYSTEM_MALLOC']) delete base[k];
    const run = spawnSync(process.execPath, [...(guard ? ['-r', guardFile] : []), '-e', `${PROBES}\n${code}`], { encoding: 'utf8', env: { ...base, SIMCLR_CACHE: cache, SPAWN_LOG: log, ...env } });
    assert.equal(run.status, 0, run.stderr);
    const spawned = readFileSync(log, 'utf8');
    let cacheFiles: string[] = [];
    try {
      cacheFiles = readdirSync(cache);
    } catch {
      // Never created: nothing was cached.
    }
    return { out: JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>, cache: cacheFiles, spawned };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('importing simclr-ts loads nothing, sets no OPENBLAS_CORETYPE, starts no process and leaves glibc as it was', () => {
  const { out, cache, spawned } = child(`
    const t = require(${JSON.stringify(INDEX)});
    const atImport = { core: process.env.OPENBLAS_CORETYPE ?? null, choice: process.env.SIMCLR_BLAS_CHOICE ?? null, libtorch: libtorchLoaded() };
    const sum = t.tensor([1, 2, 3]).sum().item();
    report({ atImport, sum, core: process.env.OPENBLAS_CORETYPE ?? null, libtorch: libtorchLoaded(), allocator: t.native.allocator, returned: returnedFraction(t), blas: t.blas });`);
  assert.deepEqual(out.atImport, { core: null, choice: null, libtorch: false }, 'the import itself loaded libtorch or chose kernels');
  assert.equal(out.sum, 6);
  assert.equal(out.libtorch, true, 'the first tensor op loads libtorch');
  assert.equal(out.core, null, 'a tensor op set OPENBLAS_CORETYPE');
  assert.equal(spawned, '', 'a child process was started');
  assert.deepEqual(cache, [], 'the BLAS probe ran (it remembers its choice in SIMCLR_CACHE)');
  assert.equal(out.allocator, 'glibc defaults');
  assert.ok((out.returned as number) > 0.9, `glibc kept ${out.returned} of a freed 128 MB tensor: its settings were changed`);
  assert.equal((out.blas as { coreType: unknown }).coreType, null);
});

test('tuneProcess() chooses the kernels before libtorch loads and keeps freed memory; later calls repeat the choice', () => {
  const { out, cache } = child(
    `
    const t = require(${JSON.stringify(INDEX)});
    const first = t.tuneProcess();
    const again = t.tuneProcess();
    report({ first, again, core: process.env.OPENBLAS_CORETYPE ?? null, loaded: t.native.blasInfo().openblasCore, allocator: t.native.allocator, returned: returnedFraction(t) });`,
    { guard: false },
  );
  const first = out.first as { allocator: string; blas: { coreType: string | null; reason: string }; blasApplied: boolean };
  assert.equal(first.allocator, 'glibc heap, freed memory kept for reuse');
  assert.equal(first.blasApplied, true);
  assert.ok(first.blas.reason.length > 0 && !/not tuned|not changed/.test(first.blas.reason), first.blas.reason);
  assert.equal(out.core, first.blas.coreType, 'OPENBLAS_CORETYPE is the chosen family');
  if (first.blas.coreType) assert.equal(String(out.loaded).toLowerCase(), first.blas.coreType.toLowerCase(), 'OpenBLAS runs the chosen kernels');
  assert.deepEqual(out.again, first);
  assert.equal(out.allocator, first.allocator);
  assert.ok((out.returned as number) < 0.1, `glibc gave back ${out.returned} of a freed 128 MB tensor`);
  if (process.platform === 'linux') assert.equal(cache.length, 1, 'the choice is remembered in SIMCLR_CACHE');
});

test('tuneProcess() after the first tensor op says the kernels were not changed; SIMCLR_SYSTEM_MALLOC=1 keeps glibc defaults', () => {
  const { out, cache, spawned } = child(
    `
    const t = require(${JSON.stringify(INDEX)});
    t.tensor([1]).sum().item();
    report({ tuned: t.tuneProcess(), core: process.env.OPENBLAS_CORETYPE ?? null, returned: returnedFraction(t) });`,
    { env: { SIMCLR_SYSTEM_MALLOC: '1' } },
  );
  const tuned = out.tuned as { allocator: string; blas: { coreType: string | null; reason: string }; blasApplied: boolean };
  assert.equal(tuned.blasApplied, false);
  assert.match(tuned.blas.reason, /kernels not changed .*before the first tensor op/);
  assert.equal(tuned.blas.coreType, null);
  assert.equal(out.core, null);
  assert.equal(spawned, '', 'a late tuneProcess() still probed');
  assert.deepEqual(cache, []);
  assert.equal(tuned.allocator, 'glibc defaults (SIMCLR_SYSTEM_MALLOC=1)');
  assert.ok((out.returned as number) > 0.9, `glibc kept ${out.returned} of a freed 128 MB tensor`);
});

test('simclr info reports the tuned allocator and the chosen BLAS kernels', () => {
  const dir = tempDir('simclr-process-');
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, SIMCLR_CACHE: dir };
    for (const k of ['OPENBLAS_CORETYPE', 'SIMCLR_BLAS_CHOICE', 'SIMCLR_SYSTEM_MALLOC']) delete env[k];
    const text = spawnSync(process.execPath, [MAIN, 'info', '--threads', '1'], { encoding: 'utf8', env });
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /allocator: glibc heap, freed memory kept for reuse\n/);
    assert.match(text.stdout, /BLAS: +\S+.*\((?!not tuned|kernels not changed).+\)\n/);
    const json = spawnSync(process.execPath, [MAIN, 'info', '--json'], { encoding: 'utf8', env });
    const info = JSON.parse(json.stdout) as { allocator: string; blas: { coreType: string | null; reason: string } };
    assert.equal(info.allocator, 'glibc heap, freed memory kept for reuse');
    assert.ok('coreType' in info.blas && info.blas.reason.length > 0 && !/not tuned/.test(info.blas.reason), info.blas.reason);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
