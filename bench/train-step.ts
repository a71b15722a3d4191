// One training step (forward, cross-entropy, backward, SGD with momentum) of the CIFAR
// ResNet-18 at batch 256, 32x32x3, against torchvision's in Python PyTorch, interleaved.
// Both sides: float32, NCHW, the same threads, the same allocator variables (./same-env)
// and the same OpenBLAS kernels (the peer inherits our OPENBLAS_CORETYPE).
import { ALLOCATOR, allocatorLine } from './same-env'; // first: re-runs us with the allocator variables the peer also gets
import * as t from '../src';

// OpenBLAS's kernels as `simclr` picks them, before libtorch loads; a peer spawned after this
// inherits OPENBLAS_CORETYPE, so both sides multiply with the same kernels. The allocator
// comes from the environment on both sides (same-env.ts), or from tuneProcess where no peer runs.
t.tuneProcess({ allocator: false });
import { PyTorchPeer, median, roundsSummary, spread } from './peer';
import { writeBenchResults } from './results-file';

const BATCH = Number(process.env.BATCH ?? 256);
const THREADS = Number(process.env.THREADS ?? 2);
const ROUNDS = Number(process.env.ROUNDS ?? 4);
const STEPS = Number(process.env.STEPS ?? 2);

async function main(): Promise<void> {
  t.setNumThreads(THREADS);
  t.manualSeed(0);
  const model = t.resnet({ depth: 18, imageSize: 32, numClasses: 10 });
  const opt = new t.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
  const x = t.keep(t.randn([BATCH, 3, 32, 32]));
  const y = t.keep(t.randint(0, 10, [BATCH]));
  const step = (): void =>
    t.tidy(() => {
      opt.zeroGrad();
      t.F.crossEntropy(model.forward(x), y).backward();
      opt.step();
    });
  const ours = (steps: number): number => {
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) step();
    return (performance.now() - t0) / 1000;
  };

  const peer = new PyTorchPeer();
  const info = await peer.call<{ torch: string; threads: number; openblas_core: string }>({ op: 'info' });
  await peer.call({ op: 'train_init', batch: BATCH, size: 32, threads: THREADS });
  // Warm-up: allocator, oneDNN primitive caches.
  ours(1);
  await peer.call({ op: 'train_run', steps: 1 });

  const oursRate: number[] = [];
  const theirsRate: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const a = ours(STEPS);
    const b = (await peer.call({ op: 'train_run', steps: STEPS })).seconds!;
    oursRate.push((BATCH * STEPS) / a);
    theirsRate.push((BATCH * STEPS) / b);
    console.log(`round ${r + 1}: simclr-ts ${oursRate.at(-1)!.toFixed(1)} img/s, pytorch ${theirsRate.at(-1)!.toFixed(1)} img/s`);
  }
  peer.close();
  const ratio = median(oursRate) / median(theirsRate);
  const ratios = oursRate.map((x, i) => x / theirsRate[i]!);
  console.log(`ResNet-18 (CIFAR stem) train step, batch ${BATCH}, 32x32x3, ${THREADS} threads, ${ROUNDS}x${STEPS} steps each, interleaved`);
  console.log(`simclr-ts: ${median(oursRate).toFixed(1)} img/s (median; ${spread(oursRate, 1)})`);
  console.log(`pytorch ${info.torch}: ${median(theirsRate).toFixed(1)} img/s (median; ${spread(theirsRate, 1)})`);
  console.log(allocatorLine());
  const figures = {
    step_ratio_vs_pytorch: Number(ratio.toFixed(3)),
    step_img_per_s_simclr_ts: Number(median(oursRate).toFixed(1)),
    step_img_per_s_pytorch: Number(median(theirsRate).toFixed(1)),
  };
  for (const [name, value] of Object.entries(figures)) console.log(`${name}=${value}`);
  const file = writeBenchResults('step', figures, {
    model: 'resnet18 (CIFAR stem), SGD momentum 0.9, cross-entropy',
    batch: BATCH, imageSize: 32, threads: THREADS, rounds: ROUNDS, stepsPerRound: STEPS, allocator: ALLOCATOR,
    peer: { torch: info.torch, threads: info.threads, openblasCore: info.openblas_core },
    imgPerS: { simclrTs: roundsSummary(oursRate, 1), pytorch: roundsSummary(theirsRate, 1) },
    ratioPerRound: roundsSummary(ratios),
  });
  console.log(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
