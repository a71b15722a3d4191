// Workers over c10d: collectives between two local processes, the gradients of the
// gathered NT-Xent and of synchronized batch norm against one process over the whole
// batch, a worker killed mid-run, and a rendezvous port already in use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as t from '../src';
import { nn } from '../src';
import { shareOf } from './dist-worker';

const WORKER = join(__dirname, 'dist-worker.js');

/** A free TCP port (the OS picks one, then it is released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface WorkerOut {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: Record<string, unknown>[];
  stderr: string;
}

function runWorkers(scenario: string, worldSize: number, port: number, extra: Record<string, string> = {}, ranks?: number[]): Promise<WorkerOut[]> {
  return Promise.all(
    (ranks ?? Array.from({ length: worldSize }, (_, r) => r)).map(
      (rank) =>
        new Promise<WorkerOut>((resolve) => {
          const env = { ...process.env, SIMCLR_DIST_CASE: scenario, MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), WORLD_SIZE: String(worldSize), RANK: String(rank), LOCAL_RANK: String(rank), OMP_NUM_THREADS: '1', ...extra };
          const child = spawn(process.execPath, [WORKER], { env, stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          child.stdout.on('data', (d) => (out += d));
          child.stderr.on('data', (d) => (err += d));
          child.on('close', (code, signal) =>
            resolve({ code, signal, stderr: err, lines: out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) }),
          );
        }),
    ),
  );
}

const close = (a: number[], b: number[], tol: number, label: string): void => {
  assert.equal(a.length, b.length, `${label}: lengths`);
  const scale = Math.max(1e-12, ...b.map(Math.abs));
  const err = Math.max(...a.map((x, i) => Math.abs(x - b[i]!))) / scale;
  assert.ok(err <= tol, `${label}: relative error ${err.toExponential(2)} > ${tol}`);
};
const flat = (x: unknown): number[] => (Array.isArray(x) ? (x as unknown[]).flatMap(flat) : [x as number]);

test('collectives between two worker processes: all-reduce (sum, avg, max), all-gather, broadcast, barrier; sums on the direct channel and, past it, through c10d', async () => {
  const out = await runWorkers('collectives', 2, await freePort());
  for (const w of out) assert.equal(w.code, 0, w.stderr);
  for (const [rank, w] of out.entries()) {
    const r = w.lines[0]!;
    assert.equal(r.rank, rank);
    assert.deepEqual(r.sum, [3, 30]);
    assert.deepEqual(r.avg, [1.5, 2]);
    assert.deepEqual(r.max, [1, 0]);
    assert.deepEqual(r.gathered, [0, 0.5, 1, 1.5]);
    assert.deepEqual(r.broadcast, [42, 1]);
    assert.deepEqual(r.numbers, [1, 2]);
    assert.equal(r.big, 20_000 * 3);
    assert.deepEqual([r.wideMean, r.wideCount], [0.5, 4]);
    assert.deepEqual(r.ints, [2 ** 41 + 1]);
  }
});

test('gathered NT-Xent and synchronized batch norm on 2 workers: the gradients of one process over the whole batch', async () => {
  const out = await runWorkers('grad', 2, await freePort());
  for (const w of out) assert.equal(w.code, 0, w.stderr);
  const [r0, r1] = out.map((w) => w.lines[0]!) as [Record<string, unknown>, Record<string, unknown>];
  t.tidy(() => {
    t.manualSeed(1);
    const z1 = t.randn([8, 16]).requiresGrad_();
    t.manualSeed(2);
    const z2 = t.randn([8, 16]).requiresGrad_();
    const { loss } = t.ntXent(z1, z2, { temperature: 0.5 });
    loss.backward();
    close([r0.loss as number], [loss.item()], 1e-6, 'loss (mean of the workers\' losses)');
    assert.equal(r0.loss, r1.loss);
    // Each worker's gradient is that of the sum of the workers' losses: 2x the mean's.
    close([...flat(r0.z1grad), ...flat(r1.z1grad)].map((g) => g / 2), flat(z1.grad!.toArray()), 1e-5, 'z1 gradient');
    close([...flat(r0.z2grad), ...flat(r1.z2grad)].map((g) => g / 2), flat(z2.grad!.toArray()), 1e-5, 'z2 gradient');
    // Synchronized batch norm = batch norm over the whole batch.
    t.manualSeed(3);
    const x = t.randn([8, 3, 4, 4]).mul(2).add(1).requiresGrad_();
    t.manualSeed(4);
    const r = t.randn([8, 3, 4, 4]);
    const bn = new nn.BatchNorm2d(3);
    t.noGrad(() => {
      bn.weight!.copy_(t.tensor([0.5, 1.5, -1]));
      bn.bias!.copy_(t.tensor([0.1, 0.2, 0.3]));
    });
    const y = bn.forward(x);
    y.mul(r).sum().backward();
    close([...flat(r0.y), ...flat(r1.y)], flat(y.toArray()), 1e-5, 'batch norm output');
    close([...flat(r0.xgrad), ...flat(r1.xgrad)], flat(x.grad!.toArray()), 1e-4, 'batch norm input gradient');
    close(flat(r0.wgrad), flat(bn.weight!.grad!.toArray()), 1e-5, 'batch norm weight gradient');
    close(flat(r1.bgrad), flat(bn.bias!.grad!.toArray()), 1e-5, 'batch norm bias gradient');
    close(flat(r0.runningMean), flat(bn.runningMean.toArray()), 1e-5, 'running mean');
    close(flat(r1.runningVar), flat(bn.runningVar.toArray()), 1e-5, 'running variance');
  });
});

test('gradient averaging: the mean over workers; a parameter no worker has a gradient for keeps none, as on one worker', async () => {
  const out = await runWorkers('average', 2, await freePort());
  for (const [rank, w] of out.entries()) {
    assert.equal(w.code, 0, w.stderr);
    const r = w.lines.find((l) => 'a' in l)!;
    assert.deepEqual(r.a, [1.5, 3, 4.5], `rank ${rank}: a`);
    assert.equal(r.b, null, `rank ${rank}: b had no gradient anywhere, so no optimiser step may touch it`);
    assert.deepEqual(r.c, [2, 4], `rank ${rank}: c`);
  }
});

test('gradients averaged during the backward pass: the same bits as after it, buckets sent by the hooks, unused and frozen parameters as on one worker', async () => {
  const out = await runWorkers('overlap', 2, await freePort());
  for (const [rank, w] of out.entries()) {
    assert.equal(w.code, 0, w.stderr);
    const r = w.lines[0]!;
    assert.equal(r.la, r.lb, `rank ${rank}: the same loss`);
    assert.equal(r.withGrad, r.params, `rank ${rank}: every parameter has a gradient on both paths`);
    assert.equal(r.gradDiff, 0, `rank ${rank}: averaged gradients differ by ${r.gradDiff as number}`);
    assert.equal(r.weightDiff, 0, `rank ${rank}: weights after LARS differ by ${r.weightDiff as number}`);
    assert.ok((r.buckets as number) > 5, `${r.buckets as number} buckets`);
    // The same gradients cross the wire (the path after the pass also sums 2 float64 figures).
    assert.equal(r.bytesDuring, (r.bytesAfter as number) - 16);
    assert.equal(r.sentDuringBackward, r.bytesDuring, 'every bucket started inside the backward pass');
    assert.equal(r.pending, 0);
    const rounds = w.lines.filter((l) => 'round' in l);
    assert.deepEqual(rounds[0], { rank, round: 0, a: [1.5, 3, 4.5], b: null, c: [2, 4], frozen: null });
    assert.deepEqual(rounds[1], { rank, round: 1, a: [2.5, 5, 7.5], b: null, c: [2, 4], frozen: null });
    assert.deepEqual(w.lines.find((l) => 'unarmed' in l)!.unarmed, [1, 1, 1], 'a backward pass outside arm/finish is not averaged');
    assert.match(String(w.lines.find((l) => 'twice' in l)?.twice), /a second backward pass ran between arm\(\) and finish\(\)/, `rank ${rank} refused a second backward pass`);
  }
});

for (const at of ['sync', 'plain'] as const) {
  test(`a worker killed while the other is in the backward pass (${at === 'sync' ? 'synchronized batch norm' : 'only gradient buckets'}): an error naming it, no hang`, async () => {
    const started = Date.now();
    const [w0, w1] = await runWorkers('kill-backward', 2, await freePort(), { SIMCLR_DIST_TIMEOUT_MS: '30000', SIMCLR_KILL_AT: at });
    assert.equal(w1!.signal, 'SIGKILL');
    assert.equal(w0!.code, 4, w0!.stderr);
    const err = w0!.lines.find((l) => l.error)!;
    assert.ok(err, `rank 0 printed ${JSON.stringify(w0!.lines)}`);
    const what = at === 'sync' ? 'the backward pass' : 'averaging the gradients \\(2 buckets, \\d+ bytes\\)';
    assert.match(err.error as string, new RegExp(`^worker rank 0 of 2: ${what} failed; rank 1 stopped answering`));
    assert.equal(err.kind, 'WorkerError');
    assert.deepEqual(err.missing, [1]);
    assert.ok((Date.now() - started) / 1000 < 60, `took ${(Date.now() - started) / 1000} s`);
  });
}

test('a worker killed with SIGKILL: the other stops with an error naming the dead rank, well within 60 s', async () => {
  const started = Date.now();
  const [w0, w1] = await runWorkers('kill', 2, await freePort(), { SIMCLR_DIST_TIMEOUT_MS: '30000' });
  assert.equal(w1!.signal, 'SIGKILL');
  assert.equal(w0!.code, 4, w0!.stderr);
  const err = w0!.lines.find((l) => l.error)!;
  assert.ok(err, `rank 0 printed ${JSON.stringify(w0!.lines)}`);
  assert.match(err.error as string, /worker rank 0 of 2: allReduce\(sum\) of \[1000\] failed; rank 1 stopped answering/);
  assert.deepEqual(err.missing, [1]);
  assert.ok((Date.now() - started) / 1000 < 60, `took ${(Date.now() - started) / 1000} s`);
});

test('the rendezvous port in use, a wrong WORLD_SIZE: clear errors naming the port or the missing rank', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as AddressInfo).port;
  try {
    const [w0] = await runWorkers('collectives', 2, port, { SIMCLR_DIST_TIMEOUT_MS: '3000' }, [0]);
    assert.equal(w0!.code, 3);
    assert.match(w0!.lines[0]!.error as string, new RegExp(`worker rank 0 of 2: the master port ${port} is in use on 127.0.0.1: choose another \\(--master-port with --nproc, else MASTER_PORT\\)`));
  } finally {
    blocker.close();
  }
  // Two workers started, each told WORLD_SIZE=3: rank 2 never comes.
  const started = Date.now();
  const out = await runWorkers('collectives', 3, await freePort(), { SIMCLR_DIST_TIMEOUT_MS: '3000' }, [0, 1]);
  const missing = /rank 2 did not join the rendezvous at 127\.0\.0\.1:\d+ within 3 s \(were 3 workers started\? WORLD_SIZE must be the number of workers\)/;
  assert.equal(out[0]!.code, 3);
  assert.match(out[0]!.lines[0]!.error as string, missing);
  // Rank 1 times out too, or first finds rank 0's rendezvous gone (rank 0 hosts it and stopped).
  assert.equal(out[1]!.code, 3);
  assert.match(out[1]!.lines[0]!.error as string, new RegExp(`${missing.source}|worker rank 1 of 3: the rendezvous at 127\\.0\\.0\\.1:\\d+ closed before every worker had joined: rank 0 stopped`));
  assert.ok(Date.now() - started < 20_000);
});

test('synchronized batch norm on 4 workers with unequal shares and a large channel mean: the statistics of one batch norm over all of them, the same bits on every worker', async () => {
  const out = await runWorkers('shares', 4, await freePort());
  const all = t.cat([0, 1, 2, 3].map(shareOf), 0);
  const mean = all.mean([0, 2, 3]).toArray() as number[];
  const variance = all.var([0, 2, 3], { unbiased: false }).toArray() as number[];
  for (const w of out) {
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.lines[0]!.count, (3 + 4 + 5 + 6) * 9);
    close(w.lines[0]!.mean as number[], mean, 1e-15, `rank ${String(w.lines[0]!.rank)}: mean`);
    close(w.lines[0]!.variance as number[], variance, 1e-9, `rank ${String(w.lines[0]!.rank)}: variance`);
    assert.deepEqual([w.lines[0]!.mean, w.lines[0]!.variance], [out[0]!.lines[0]!.mean, out[0]!.lines[0]!.variance], 'every worker the same bits');
  }
});

test('collective ops refuse made-up store, group and work numbers, bad ports and timeouts, as TypeErrors', () => {
  const n = t.native;
  assert.throws(() => n.distWait(123456 as never, 10), { name: 'TypeError', message: /distWait: argument 'work' is not an open work item/ });
  assert.throws(() => n.distAllReduce(7 as never, 0 as never, 'sum'), { name: 'TypeError', message: /argument 'group' is not an open process group/ });
  assert.throws(() => n.distStoreGet(-1 as never, 'k'), { name: 'TypeError', message: /argument 'store' is not an open store/ });
  assert.throws(() => n.distStoreOpen('127.0.0.1', 70000, true, 1000), { name: 'TypeError', message: /argument 'port' must be a port number/ });
  assert.throws(() => n.distStoreOpen('127.0.0.1', 1234, true, 0), { name: 'TypeError', message: /argument 'timeoutMs' must be a timeout/ });
  assert.throws(() => n.distStoreOpen('127.0.0.1', 1234, true, NaN), { name: 'TypeError', message: /argument 'timeoutMs'/ });
  assert.throws(() => n.distStoreOpen('', 1234, true, 1000), { name: 'TypeError', message: /argument 'host'/ });
  assert.throws(() => n.distReducerArm(99 as never), { name: 'TypeError', message: /distReducerArm: argument 'reducer' is not an open gradient reducer/ });
  assert.throws(() => n.distReducerFinish(99 as never, 1000), { name: 'TypeError', message: /argument 'reducer' is not an open gradient reducer/ });
  assert.throws(() => n.distReducerNew(7 as never, [], [1]), { name: 'TypeError', message: /argument 'group' is not an open process group/ });
  assert.equal(n.distAvailable(), true);
  assert.equal(n.distPending(), 0);
});

test('a process group of one: collectives are identities, and a destroyed group refuses work naming the rank', async () => {
  const g = t.distributed.ProcessGroup.init({ masterAddr: '127.0.0.1', masterPort: await freePort(), worldSize: 1, rank: 0, timeoutMs: 5000 });
  t.tidy(() => {
    assert.deepEqual(g.allReduce(t.tensor([1, 2]), 'avg').toArray(), [1, 2]);
    assert.deepEqual(g.allGather(t.tensor([[3, 4]])).toArray(), [3, 4]);
    assert.throws(() => g.allReduce(t.tensor([1, 2]).expand(2, 2).transpose(0, 1)), /worker rank 0 of 1: allReduce\(sum\) of \[2, 2\] failed.*dense contiguous/);
  });
  g.destroy();
  assert.throws(() => t.tidy(() => g.barrier()), /worker rank 0: the process group was destroyed/);
});

test('the gradient reducer refuses bad parameters and bucket counts as TypeErrors; on one worker it leaves the gradients', async () => {
  const g = t.distributed.ProcessGroup.init({ masterAddr: '127.0.0.1', masterPort: await freePort(), worldSize: 1, rank: 0, timeoutMs: 5000 });
  t.tidy(() => {
    const n = t.native;
    const gid = (g as unknown as { group: never }).group;
    const p = t.zeros([2]).requiresGrad_();
    const q = t.zeros([3]).requiresGrad_();
    assert.throws(() => n.distReducerNew(gid, [], []), { name: 'TypeError', message: /'params' must list at least one parameter/ });
    assert.throws(() => n.distReducerNew(gid, [p.h, p.h], [2]), { name: 'TypeError', message: /'params' lists one tensor twice/ });
    assert.throws(() => n.distReducerNew(gid, [t.zeros([2]).h], [1]), { name: 'TypeError', message: /'params' must hold leaf tensors that require grad/ });
    assert.throws(() => n.distReducerNew(gid, [p.mul(2).h], [1]), { name: 'TypeError', message: /'params' must hold leaf tensors that require grad/ });
    assert.throws(() => n.distReducerNew(gid, [p.h, q.h], [1]), { name: 'TypeError', message: /'bucketSizes' must add up to the number of parameters \(2\)/ });
    assert.throws(() => n.distReducerNew(gid, [p.h, q.h], [1, 0]), { name: 'TypeError', message: /'bucketSizes' must hold positive counts/ });
    assert.throws(() => n.distReducerNew(gid, [p.h, q.h], [1.5, 0.5]), { name: 'TypeError', message: /'bucketSizes'/ });
    // On one worker the reducer is the identity: arm, backward, finish leaves the gradients.
    const r = g.gradientReducer([p, q], [[1], [0]]);
    assert.throws(() => r.finish(), /finish\(\) without arm\(\)/);
    r.arm();
    p.mul(t.tensor([1, 2])).sum().backward();
    r.finish();
    assert.deepEqual(p.grad!.toArray(), [1, 2]);
    assert.equal(q.grad, null);
    r.dispose();
    r.dispose();
    assert.throws(() => r.arm(), /disposed/);
  });
  g.destroy();
});

test('keyed views: an image\'s views depend on (seed, epoch, image index), not on its batch or its place in it', () => {
  t.tidy(() => {
    t.manualSeed(0);
    const images = t.rand([3, 3, 16, 16]);
    const o = t.simclrViewOptions(16);
    const [a1, a2] = t.simclrViews(images, o, { seed: 7, epoch: 2, indices: [5, 9, 2] });
    // The same images in another order and company: image 2 first, then image 5.
    const [b1, b2] = t.simclrViews(t.cat([images.narrow(0, 2, 1), images.narrow(0, 0, 1)]), o, { seed: 7, epoch: 2, indices: [2, 5] });
    assert.ok(a1.narrow(0, 2, 1).sub(b1.narrow(0, 0, 1)).abs().amax([0, 1, 2, 3]).item() === 0, 'image 2, first view');
    assert.ok(a2.narrow(0, 0, 1).sub(b2.narrow(0, 1, 1)).abs().amax([0, 1, 2, 3]).item() === 0, 'image 5, second view');
    // Another epoch, or the other view, differs.
    const [c1] = t.simclrViews(images, o, { seed: 7, epoch: 3, indices: [5, 9, 2] });
    assert.ok(a1.sub(c1).abs().amax([0, 1, 2, 3]).item() > 0.01, 'epoch 3 draws other views');
    assert.ok(a1.sub(a2).abs().amax([0, 1, 2, 3]).item() > 0.01, 'the two views differ');
    // The keyed numbers are uniform on [0, 1): mean about 1/2 over many images.
    const u = t.keyedRandom({ seed: 1, epoch: 0, indices: Array.from({ length: 4000 }, (_, i) => i) }, 0).uniform([4000, 4], 'cpu');
    assert.ok(Math.abs(u.mean().item() - 0.5) < 0.01 && u.amin([0, 1]).item() >= 0 && u.amax([0, 1]).item() < 1);
  });
});
