// One worker of the distributed tests (test/distributed.test.ts starts two of these with
// the torchrun variables and SIMCLR_DIST_CASE). Run any other way it does nothing.
import * as t from '../src';
import { BackwardAverager, ProcessGroup, WorkerError, averageGradients, gatherWithGrad, syncBatchNorm, useSyncBatchNorm, workerEnv } from '../src/distributed';
import { pretrainUpdate, type PretrainState, type Workers } from '../src/train';
import { nn } from '../src';

const say = (x: object): void => {
  process.stdout.write(JSON.stringify(x) + '\n');
};

/** The same seeded inputs on every worker: the whole batch, of which each takes its rows. */
function inputs(seed: number, shape: number[]): t.Tensor {
  t.manualSeed(seed);
  return t.keep(t.randn(shape));
}

/** A small SimCLR model (same weights on every worker: same seed), batch norm synchronized, LARS. */
function tinyPretrain(group: ProcessGroup, workers: Workers): PretrainState {
  t.manualSeed(5);
  const model = t.nn.prepareModel(new t.SimCLRModel({ encoder: { depth: 18, width: 0.0625, cifarStem: true }, head: { layers: 3, outDim: 16 } }));
  useSyncBatchNorm(model, group);
  const optimizer = new t.LARS(model.namedParameters(), { lr: 0.5, momentum: 0.9, weightDecay: 1e-4, trustCoefficient: 0.001 });
  return { model, optimizer, views: t.simclrViewOptions(8), norm: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, temperature: 0.5, workers };
}

/** This worker's rows of the global batch of views [2B, 3, 8, 8]: its first views, then its second. */
function viewsOf(rank: number, worldSize: number, batch: number): t.Tensor {
  const all = inputs(9, [2 * batch, 3, 8, 8]).sigmoid();
  const n = batch / worldSize;
  return t.cat([all.narrow(0, rank * n, n), all.narrow(0, batch + rank * n, n)]);
}

/** Rank r's share for the 'shares' case: 3 + r images [2 channels, 3 x 3] around 1e4 and -2, in float64. */
export function shareOf(rank: number): t.Tensor {
  t.manualSeed(100 + rank);
  return t.rand([3 + rank, 2, 3, 3], { dtype: 'float64' }).add(t.tensor([1e4, -2], [1, 2, 1, 1], { dtype: 'float64' }));
}

const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function main(): void {
  const scenario = process.env.SIMCLR_DIST_CASE;
  const w = workerEnv();
  if (!scenario || !w) return;
  t.setNumThreads(1);
  const timeoutMs = Number(process.env.SIMCLR_DIST_TIMEOUT_MS ?? 30_000);
  let group: ProcessGroup;
  try {
    group = ProcessGroup.init({ ...w, timeoutMs });
  } catch (e) {
    say({ rank: w.rank, error: (e as Error).message, kind: (e as Error).name });
    process.exitCode = 3;
    return;
  }
  const { rank, worldSize } = group;
  if (scenario === 'collectives') {
    t.tidy(() => {
      const sum = group.allReduce(t.tensor([rank + 1, 10 * (rank + 1)]), 'sum').toArray();
      const avg = group.allReduce(t.tensor([rank + 1, 2]), 'avg').toArray();
      const max = group.allReduce(t.tensor([rank, -rank]), 'max').toArray();
      const gathered = group.allGather(t.tensor([[rank, rank + 0.5]])).toArray();
      const b = group.broadcast(t.tensor([rank === 1 ? 42 : -1, rank]), 1).toArray();
      group.barrier();
      // Past the direct channel's 64 KiB: through c10d. A sum of 20,000 floats; batch norm of
      // 5,000 channels (its statistics, 80 KB a worker); integers, exactly.
      const big = t.noGrad(() => group.sumWithGrad(t.full([20_000], rank + 1))).sum().item();
      const wide = group.syncBatchNorm(t.full([2, 5000], rank), { weight: null, bias: null, eps: 1e-5 });
      const ints = t.noGrad(() => group.sumWithGrad(t.tensor([2 ** 40 + rank], undefined, { dtype: 'int64' }))).toArray();
      say({ rank, sum, avg, max, gathered, broadcast: b, numbers: group.sumNumbers([rank, 1]), big, wideMean: wide.mean.mean().item(), wideCount: wide.count, ints });
    });
  } else if (scenario === 'grad') {
    // NT-Xent over gathered projections and synchronized batch norm, on this worker's rows.
    t.tidy(() => {
      const B = 8;
      const n = B / worldSize;
      const z1 = inputs(1, [B, 16]).narrow(0, rank * n, n).clone().requiresGrad_();
      const z2 = inputs(2, [B, 16]).narrow(0, rank * n, n).clone().requiresGrad_();
      const { loss } = t.ntXent(z1, z2, { temperature: 0.5, gather: (h) => gatherWithGrad(group, h) });
      loss.backward();
      const x = inputs(3, [B, 3, 4, 4]).mul(2).add(1).narrow(0, rank * n, n).clone().requiresGrad_();
      const r = inputs(4, [B, 3, 4, 4]).narrow(0, rank * n, n);
      const bn = new nn.BatchNorm2d(3);
      t.noGrad(() => {
        bn.weight!.copy_(t.tensor([0.5, 1.5, -1]));
        bn.bias!.copy_(t.tensor([0.1, 0.2, 0.3]));
      });
      bn.trainingImpl = syncBatchNorm(group);
      const y = bn.forward(x);
      y.mul(r).sum().backward();
      const wgrad = group.allReduce(bn.weight!.grad!.clone(), 'sum');
      const bgrad = group.allReduce(bn.bias!.grad!.clone(), 'sum');
      say({
        rank,
        loss: group.sumNumbers([loss.item()])[0]! / worldSize,
        z1grad: z1.grad!.toArray(),
        z2grad: z2.grad!.toArray(),
        y: y.toArray(),
        xgrad: x.grad!.toArray(),
        wgrad: wgrad.toArray(),
        bgrad: bgrad.toArray(),
        runningMean: bn.runningMean.toArray(),
        runningVar: bn.runningVar.toArray(),
      });
    });
  } else if (scenario === 'average') {
    // Gradient averaging: `a` has a gradient on every worker, `b` on none (it must keep none,
    // as on one worker), `c` on rank 0 only (rank 1 gets the mean).
    t.tidy(() => {
      const a = t.zeros([3]).requiresGrad_();
      const b = t.zeros([2]).requiresGrad_();
      const c = t.zeros([2]).requiresGrad_();
      a.mul(t.tensor([1, 2, 3]).mul(rank + 1)).sum().add(rank === 0 ? c.mul(t.tensor([4, 8])).sum() : 0).backward();
      averageGradients(group, [a, b, c]);
      say({ rank, a: a.grad?.toArray() ?? null, b: b.grad?.toArray() ?? null, c: c.grad?.toArray() ?? null });
    });
  } else if (scenario === 'overlap') {
    // One pretraining step of the same model on the same views, gradients averaged after the
    // backward pass (averageGradients) and during it (small buckets: many start mid-pass,
    // between synchronized batch norm's own collectives): the gradients and the weights after
    // LARS must be the same bits.
    t.tidy(() => {
      const after = tinyPretrain(group, { group, overlap: false });
      const during = tinyPretrain(group, { group, overlap: true, averager: new BackwardAverager(group, 16 * 1024, 2 * 1024) });
      const views = viewsOf(rank, worldSize, 8);
      const at = { stage: 'test', step: 0, lr: 0.5 };
      const before = group.counters();
      const la = pretrainUpdate(after, views, at).loss;
      const mid = group.counters();
      const lb = pretrainUpdate(during, views, at).loss;
      const end = group.counters();
      const pa = after.optimizer.params.map(([, p]) => p);
      const pb = during.optimizer.params.map(([, p]) => p);
      let gradDiff = 0;
      let weightDiff = 0;
      let withGrad = 0;
      for (const [i, p] of pa.entries()) {
        const q = pb[i]!;
        if (p.grad && q.grad) {
          withGrad++;
          gradDiff = Math.max(gradDiff, p.grad.sub(q.grad).abs().reshape(-1).amax([0]).item());
        } else if (p.grad || q.grad) gradDiff = Infinity;
        weightDiff = Math.max(weightDiff, p.sub(q).abs().reshape(-1).amax([0]).item());
      }
      const buckets = t.distributed.planBuckets(pb, 16 * 1024, 2 * 1024).buckets.length;
      // The overlap itself: buckets leave during the backward pass, before finish().
      const averager = during.workers!.averager!;
      const x = t.normalise(views, during.norm);
      const [z1, z2] = t.nn.forwardIn(during.model, x).chunk(2);
      const loss = t.ntXent(z1!, z2!, { temperature: 0.5, gather: (h) => gatherWithGrad(group, h) }).loss;
      averager.arm(pb);
      const armed = group.counters().gradientBytes;
      loss.backward();
      const sentDuringBackward = group.counters().gradientBytes - armed;
      averager.finish();
      say({ rank, la, lb, gradDiff, weightDiff, withGrad, params: pa.length, buckets, bytesAfter: mid.allReduceBytes - before.allReduceBytes, bytesDuring: end.gradientBytes - mid.gradientBytes, sentDuringBackward, pending: t.native.distPending() });
      after.model.dispose();
      during.model.dispose();
    });
    // Parameters with a gradient on every worker, on none, on rank 0 only: as averageGradients.
    t.tidy(() => {
      const a = t.zeros([3]).requiresGrad_();
      const b = t.zeros([2]).requiresGrad_();
      const c = t.zeros([2]).requiresGrad_();
      const frozen = t.zeros([2]);
      const averager = new BackwardAverager(group, 8, 8);
      for (let round = 0; round < 2; round++) {
        for (const p of [a, b, c]) p.grad = null;
        averager.arm([a, frozen, b, c]);
        a.mul(t.tensor([1, 2, 3]).mul(rank + 1 + round)).sum().add(rank === 0 ? c.mul(t.tensor([4, 8])).sum() : 0).backward();
        averager.finish();
        say({ rank, round, a: a.grad?.toArray() ?? null, b: b.grad?.toArray() ?? null, c: c.grad?.toArray() ?? null, frozen: frozen.grad?.toArray() ?? null });
      }
      // A backward pass outside arm/finish is left alone.
      for (const p of [a, b, c]) p.grad = null;
      a.sum().backward();
      say({ rank, unarmed: a.grad!.toArray() });
      // Two backward passes between arm and finish: refused at finish, not silently overwritten.
      for (const p of [a, b, c]) p.grad = null;
      averager.arm([a, frozen, b, c]);
      a.sum().backward();
      a.sum().backward();
      let twice = '';
      try {
        averager.finish();
      } catch (e) {
        twice = (e as Error).message;
      }
      say({ rank, twice });
      averager.dispose();
    });
  } else if (scenario === 'kill-backward') {
    // Rank 1 dies while rank 0 is in the backward pass (SIMCLR_KILL_AT=sync: a pretraining
    // step whose backward pass runs synchronized batch norm's collectives; plain: only the
    // overlapped gradient buckets). Rank 0 must stop with an error naming rank 1.
    const started = Date.now();
    const sync = process.env.SIMCLR_KILL_AT === 'sync';
    try {
      t.tidy(() => {
        if (sync) {
          const s = tinyPretrain(group, { group, overlap: true });
          const views = viewsOf(rank, worldSize, 8);
          if (rank === 1) {
            // The step's collectives up to the backward pass, then death.
            const x = t.normalise(views, s.norm);
            const [z1, z2] = t.nn.forwardIn(s.model, x).chunk(2);
            const out = t.ntXent(z1!, z2!, { temperature: s.temperature, gather: (h) => gatherWithGrad(group, h) });
            group.sumNumbers([out.loss.item(), 0]);
            process.kill(process.pid, 'SIGKILL');
          }
          pretrainUpdate(s, views, { stage: 'test', step: 0, lr: 0.5 });
        } else {
          const w = t.randn([256, 256]).requiresGrad_();
          const v = t.randn([256]).requiresGrad_();
          const averager = new BackwardAverager(group, 64 * 1024, 1024);
          group.barrier();
          if (rank === 1) process.kill(process.pid, 'SIGKILL');
          sleep(300);
          averager.arm([w, v]);
          t.randn([4, 256]).matmul(w).add(v).pow(2).sum().backward();
          averager.finish();
        }
      });
      say({ rank, error: null });
    } catch (e) {
      const err = e as WorkerError;
      say({ rank, error: err.message, kind: err.name, missing: err.missing, seconds: (Date.now() - started) / 1000 });
      process.exitCode = 4;
    }
    return;
  } else if (scenario === 'shares') {
    // Synchronized batch norm over unequal shares (3 + rank images) with a large channel
    // mean: each worker's statistics, as it reports them, to compare with one batch norm.
    t.tidy(() => {
      const out = group.syncBatchNorm(shareOf(rank), { weight: null, bias: null, eps: 1e-5 });
      say({ rank, count: out.count, mean: out.mean.toArray(), variance: out.variance.toArray() });
    });
  } else if (scenario === 'kill') {
    // Rank 1 dies (SIGKILL) after the first all-reduce; rank 0 keeps going.
    const started = Date.now();
    try {
      for (let i = 0; ; i++) {
        t.tidy(() => group.allReduce(t.ones([1000]), 'sum'));
        if (i === 0) say({ rank, first: true });
        if (i === 0 && rank === 1) process.kill(process.pid, 'SIGKILL');
        if (i === 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
      }
    } catch (e) {
      const err = e as WorkerError;
      say({ rank, error: err.message, kind: err.name, missing: err.missing, seconds: (Date.now() - started) / 1000 });
      process.exitCode = 4;
    }
    return;
  }
  group.barrier();
  group.destroy();
}

main();
