// Resident memory of a 10,000-step training-style loop (forward, backward, SGD with
// momentum, all tensors in scopes): RSS after step 10,000 against after step 100.
import * as t from '../src';

// OpenBLAS's kernels as `simclr` picks them, before libtorch loads; a peer spawned after this
// inherits OPENBLAS_CORETYPE, so both sides multiply with the same kernels. The allocator
// comes from the environment on both sides (same-env.ts), or from tuneProcess where no peer runs.
t.tuneProcess({ allocator: true });
import { nn } from '../src';
import { writeBenchResults } from './results-file';

const STEPS = Number(process.env.STEPS ?? 10_000);

function main(): void {
  t.setNumThreads(1);
  t.manualSeed(0);
  const model = new nn.Sequential(
    new nn.Conv2d(1, 8, 3, { padding: 1 }),
    new nn.BatchNorm2d(8),
    new nn.ReLU(),
    new nn.MaxPool2d(2),
    new nn.Flatten(),
    new nn.Linear(8 * 8 * 8, 10),
  );
  const opt = new t.SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
  const samples: { step: number; rss: number; live: number }[] = [];
  const t0 = performance.now();
  for (let step = 1; step <= STEPS; step++) {
    t.tidy(() => {
      const x = t.randn([32, 1, 16, 16]);
      const y = t.randint(0, 10, [32]);
      const loss = t.F.crossEntropy(model.forward(x), y);
      opt.zeroGrad();
      loss.backward();
      opt.step();
    });
    if (step === 100 || step % 1000 === 0) {
      samples.push({ step, rss: process.memoryUsage.rss(), live: t.liveTensors() });
      console.log(`step ${step}: rss ${(samples.at(-1)!.rss / 2 ** 20).toFixed(1)} MiB, live tensors ${t.liveTensors()}`);
    }
  }
  const at100 = samples.find((s) => s.step === 100)!;
  const last = samples.at(-1)!;
  const growth = last.rss / at100.rss - 1;
  const seconds = (performance.now() - t0) / 1000;
  const mib = (bytes: number): number => Number((bytes / 2 ** 20).toFixed(1));
  console.log(`${STEPS} steps in ${seconds.toFixed(1)}s`);
  console.log(`rss step 100: ${mib(at100.rss)} MiB, step ${last.step}: ${mib(last.rss)} MiB`);
  console.log(`live tensors step 100: ${at100.live}, step ${last.step}: ${last.live}`);
  console.log(`rss_growth_percent=${(growth * 100).toFixed(2)}  (target: within 5)`);
  const figures = {
    rss_growth_percent: Number((growth * 100).toFixed(2)),
    rss_mib_step_100: mib(at100.rss),
    rss_mib_last_step: mib(last.rss),
    live_tensors_step_100: at100.live,
    live_tensors_last_step: last.live,
    memory_steps: STEPS,
    memory_seconds: Number(seconds.toFixed(1)),
  };
  for (const [name, value] of Object.entries(figures).slice(1)) console.log(`${name}=${value}`);
  const file = writeBenchResults('memory', figures, {
    model: 'conv 1->8 3x3, batch norm, ReLU, max pool, linear 512->10; SGD momentum 0.9; batch 32 of 1x16x16; 1 thread',
    target: 'rss growth within 5% from step 100 to the last, live tensors unchanged',
    samples: samples.map((x) => ({ step: x.step, rssMiB: mib(x.rss), liveTensors: x.live })),
  });
  console.log(`wrote ${file}`);
  if (Math.abs(growth) > 0.05 || last.live !== at100.live) process.exitCode = 1;
}

main();
