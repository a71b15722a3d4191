// Data-parallel pretraining through the command line: 2 workers against 1 at the same
// global batch, the weights of every worker compared after every step, a worker killed
// with SIGKILL, a rendezvous port in use, and workers started by the environment alone
// (as torchrun, srun or a PyTorchJob start them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as t from '../src';
import { tempDir } from './helpers';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
// A few steps of real pretraining on 256 Fashion-MNIST images: 4 steps of global batch 64.
const RUN = ['--data', 'fashion-mnist', '--max-images', '256', '--epochs', '1', '--batch', '64', '--width', '0.25', '--precision', 'fp32', '--channels-last', 'off', '--seed', '0', '--lr', '0.3'];
const env = { ...process.env, SIMCLR_CHECK_WEIGHTS: '1' };

function losses(dir: string): Record<string, number>[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((m) => m.loss !== undefined);
}

test('2 workers at global batch 64 match 1 worker at batch 64: every step\'s loss within 0.5%, and equal weights on both workers after each step', () => {
  const dir = tempDir();
  try {
    const one = spawnSync(process.execPath, [MAIN, 'pretrain', ...RUN, '--threads', '1', '--out', join(dir, 'r1')], { encoding: 'utf8', env });
    assert.equal(one.status, 0, one.stderr);
    const folders = () => new Set(readdirSync(tmpdir()).filter((f) => f.startsWith('simclr-rendezvous-')));
    const before = folders();
    const two = spawnSync(process.execPath, [MAIN, 'pretrain', ...RUN, '--nproc', '2', '--threads', '1', '--out', join(dir, 'r2')], { encoding: 'utf8', env: { ...env, SIMCLR_PROFILE_COLLECTIVES: '1' } });
    assert.equal(two.status, 0, two.stderr);
    assert.match(two.stderr, /simclr: 2 workers on this machine \(pids \d+, \d+ for ranks 0-1\), rendezvous in a private file, 1 thread each/);
    assert.deepEqual([...folders()].filter((f) => !before.has(f)), [], 'the rendezvous folder is removed at the end');
    const a = losses(join(dir, 'r1'));
    const b = losses(join(dir, 'r2'));
    assert.equal(a.length, 4);
    assert.equal(b.length, 4, 'rank 0 alone writes the metrics, once per step');
    for (const [i, m] of a.entries()) {
      const rel = Math.abs(m.loss! - b[i]!.loss!) / m.loss!;
      assert.ok(rel < 0.005, `step ${m.step}: loss ${m.loss} on 1 worker, ${b[i]!.loss} on 2 (${(rel * 100).toFixed(3)}%)`);
      assert.equal(b[i]!.workers, 2);
      assert.equal(b[i]!.weights_checked, 2, 'the checksums of both workers were compared after the step');
      assert.ok(b[i]!.comm_bn_bytes! > 0, 'batch norm statistics are summed over the workers (global, the default)');
    }
    assert.ok(Math.abs(a[0]!.loss! - b[0]!.loss!) / a[0]!.loss! < 1e-5, 'the first step (same weights, same views) agrees to float32 rounding');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--batch-norm local: each worker normalises with its own statistics (no batch norm collectives), the parameters stay equal, and a resume keeps the setting', () => {
  const dir = tempDir();
  try {
    const out = join(dir, 'local');
    const r = spawnSync(process.execPath, [MAIN, 'pretrain', ...RUN, '--nproc', '2', '--threads', '1', '--batch-norm', 'local', '--out', out], { encoding: 'utf8', env: { ...env, SIMCLR_PROFILE_COLLECTIVES: '1' } });
    assert.equal(r.status, 0, r.stderr);
    const steps = losses(out);
    assert.equal(steps.length, 4);
    for (const m of steps) {
      assert.ok(Number.isFinite(m.loss), `step ${m.step}: loss ${m.loss}`);
      assert.equal(m.comm_bn_bytes, 0, `step ${m.step}: no batch norm statistics cross between workers`);
      assert.equal(m.weights_checked, 2, 'the parameters of both workers were compared after the step');
    }
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { pretrain: { batchNorm?: string } };
    assert.equal(config.pretrain.batchNorm, 'local');
    const again = spawnSync(process.execPath, [MAIN, 'pretrain', '--out', out, '--resume', '--batch-norm', 'global'], { encoding: 'utf8', env });
    assert.equal(again.status, 2, again.stderr);
    assert.match(again.stderr, /--batch-norm \(recorded "local", given "global"\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Largest and median relative difference (L2) of the float tensors of two checkpoints. */
function weightDifferences(a: string, b: string): { worst: number; median: number; count: number } {
  const w1 = t.loadSafetensors(join(a, 'pretrain.safetensors')).tensors;
  const w2 = t.loadSafetensors(join(b, 'pretrain.safetensors')).tensors;
  const diffs: number[] = [];
  t.tidy(() => {
    for (const [name, x] of w1) {
      if (x.dtype !== 'float32') continue;
      const scale = x.norm().item();
      if (scale > 0) diffs.push(x.sub(w2.get(name)!).norm().item() / scale);
    }
  });
  diffs.sort((p, q) => p - q);
  return { worst: diffs[diffs.length - 1]!, median: diffs[diffs.length >> 1]!, count: diffs.length };
}

test('one step of global batch 64 on 2 workers leaves the weights of one step on 1 worker (float32 rounding)', () => {
  // Later steps amplify rounding differences (as 1 thread against 2 does in one process),
  // so the weights are compared after one step.
  const dir = tempDir();
  try {
    const args = [...RUN, '--max-images', '64', '--threads', '1'];
    const one = spawnSync(process.execPath, [MAIN, 'pretrain', ...args, '--out', join(dir, 'r1')], { encoding: 'utf8', env });
    assert.equal(one.status, 0, one.stderr);
    const two = spawnSync(process.execPath, [MAIN, 'pretrain', ...args, '--nproc', '2', '--out', join(dir, 'r2')], { encoding: 'utf8', env });
    assert.equal(two.status, 0, two.stderr);
    const d = weightDifferences(join(dir, 'r1'), join(dir, 'r2'));
    assert.ok(d.count > 100, `${d.count} tensors compared (weights and momentum)`);
    assert.ok(d.median < 1e-4, `median relative difference ${d.median}`);
    assert.ok(d.worst < 1e-2, `largest relative difference ${d.worst}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a worker killed with SIGKILL: the command stops within 60 s, non-zero, naming the rank', async () => {
  const dir = tempDir();
  try {
    const started = Date.now();
    const child = spawn(process.execPath, [MAIN, 'pretrain', ...RUN, '--max-images', '2048', '--epochs', '3', '--nproc', '2', '--threads', '1', '--out', join(dir, 'r')], { env: process.env });
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d) => {
      stderr += d;
      // Once the first step is done, rank 1 dies.
      const pids = /pids (\d+), (\d+) for ranks/.exec(stderr);
      if (!killed && pids && /pretrain epoch 1\/3 \d+\/32/.test(stderr)) {
        killed = true;
        process.kill(Number(pids[2]), 'SIGKILL');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const seconds = (Date.now() - started) / 1000;
    assert.ok(killed, `no step was reported: ${stderr}`);
    assert.notEqual(code, 0);
    assert.ok(seconds < 60, `took ${seconds} s`);
    assert.match(stderr, /simclr: worker rank 1 \(pid \d+\) was killed by SIGKILL; stopping the other workers/);
    assert.match(stderr, /worker rank 0 of 2: .* failed; rank 1 stopped answering/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--master-port in use: a usage error naming the port (exit 2), before any worker starts', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as AddressInfo).port;
  const dir = tempDir();
  try {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [MAIN, 'pretrain', ...RUN, '--nproc', '2', '--master-port', String(port), '--out', join(dir, 'r')]);
      let stderr = '';
      c.stderr.on('data', (d) => (stderr += d));
      c.on('close', (code) => resolve({ code, stderr }));
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`simclr: the rendezvous port ${port} is in use on 127\\.0\\.0\\.1: choose another with --master-port`));
    assert.equal(existsSync(join(dir, 'r', 'config.json')), false);
  } finally {
    blocker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('workers started by the environment alone (torchrun, srun, a PyTorchJob): rank 0 writes the run; a missing variable is a usage error naming it', async () => {
  const dir = tempDir();
  const port = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  try {
    const worker = (rank: number) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const c = spawn(process.execPath, [MAIN, 'pretrain', ...RUN, '--max-images', '128', '--threads', '1', '--out', join(dir, 'r')], {
          env: { ...process.env, MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), WORLD_SIZE: '2', RANK: String(rank), LOCAL_RANK: String(rank) },
        });
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (d) => (stdout += d));
        c.stderr.on('data', (d) => (stderr += d));
        c.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    const [w0, w1] = await Promise.all([worker(0), worker(1)]);
    assert.equal(w0.code, 0, w0.stderr);
    assert.equal(w1.code, 0, w1.stderr);
    assert.match(w0.stdout, /pretraining ResNet-18/);
    assert.doesNotMatch(w1.stdout, /pretraining ResNet-18/, 'rank 1 leaves the talking to rank 0');
    const m = losses(join(dir, 'r'));
    assert.deepEqual(m.map((x) => [x.step, x.workers]), [[1, 2], [2, 2]]);
    const bad = spawnSync(process.execPath, [MAIN, 'pretrain', ...RUN, '--out', join(dir, 'bad')], { encoding: 'utf8', env: { ...process.env, WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1' } });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /WORLD_SIZE=2 is set, so this is one of several workers, but MASTER_PORT, RANK are not/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
