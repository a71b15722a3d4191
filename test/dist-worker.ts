// One worker of the distributed tests (test/distributed.test.ts starts two of these with
// the torchrun variables and SIMCLR_DIST_CASE). Run any other way it does nothing.
import * as t from '../src';
import { ProcessGroup, WorkerError, averageGradients, gatherWithGrad, syncBatchNorm, workerEnv } from '../src/distributed';
import { nn } from '../src';

const say = (x: object): void => {
  process.stdout.write(JSON.stringify(x) + '\n');
};

/** The same seeded inputs on every worker: the whole batch, of which each takes its rows. */
function inputs(seed: number, shape: number[]): t.Tensor {
  t.manualSeed(seed);
  return t.keep(t.randn(shape));
}

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
      say({ rank, sum, avg, max, gathered, broadcast: b, numbers: group.sumNumbers([rank, 1]) });
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
