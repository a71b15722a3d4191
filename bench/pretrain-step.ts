// The full SimCLR pretraining step (two views, forward of both through encoder and head,
// NT-Xent, backward, LARS) of ResNet-18 (CIFAR stem) at batch 256 on CIFAR-10 images,
// against the same step in Python PyTorch (bench/py/simclr_step.py), interleaved, with
// the same work on both sides: the peer's colour jitter runs each op only on the images
// that draw it, as ours does. Two peers:
//  - tuned: what a careful PyTorch user runs here: our precision and layout (bf16 autocast,
//    channels-last where ours picks them), the same allocator variables, OPENBLAS_CORETYPE
//    as this process chose it, the same threads;
//  - out of the box: float32, NCHW, glibc's allocator defaults, OpenBLAS's own kernel
//    choice; given our thread count (on its own PyTorch 1.13 takes one per physical core).
// Also: the model's part alone (encoder + head + loss + optimiser on the same fixed views,
// against the tuned peer), the views alone, the step's achieved TFLOP/s against a
// convolution ceiling measured in the same run, and the views' share of a batch-512 step.
// Ours runs with the settings the process picks for this machine (PRECISION and
// CHANNELS_LAST override, as --precision and --channels-last do).
import { ALLOCATOR, allocatorLine } from './same-env'; // first: re-runs us with the allocator variables
import { join } from 'node:path';
import { readFileSync, rmSync } from 'node:fs';
import * as t from '../src';

// OpenBLAS's kernels as `simclr` picks them, before libtorch loads; a peer spawned after this
// inherits OPENBLAS_CORETYPE, so both sides multiply with the same kernels. The allocator
// comes from the environment on both sides (same-env.ts), or from tuneProcess where no peer runs.
t.tuneProcess({ allocator: false });
import { decodeImages, listImages, seededRandom } from '../src/data';
import { PyTorchPeer, median, spread } from './peer';
import { pretrainStep, pretrainUpdate, type PretrainState } from '../src/train';
import { writeBenchResults } from './results-file';

/** CIFAR-10's channel statistics; bench/py/simclr_step.py normalises with the same numbers. */
const CIFAR_NORM = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };
import { DATASETS } from '../test/helpers';


/** A model and image size the step is measured at; BATCH overrides the first case's batch. */
interface Case {
  model: string;
  depth: 18 | 50;
  size: number;
  batch: number;
  /** Suffix of the printed figures ('' for the first case, whose names predate the others). */
  suffix: string;
}
const CASES: Case[] = [
  { model: 'resnet18_32px', depth: 18, size: 32, batch: Number(process.env.BATCH ?? 256), suffix: '' },
  { model: 'resnet50_224px', depth: 50, size: 224, batch: 32, suffix: '_resnet50_224px' },
].filter((c) => !process.env.MODELS || process.env.MODELS.split(',').includes(c.model)) as Case[];
const THREADS = Number(process.env.THREADS ?? 2);
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const CIFAR = process.env.CIFAR ?? join(DATASETS, 'cifar10', 'train');
/** The ceiling's convolution: [CEIL_N, 256, 32, 32] -> 256 channels, 3x3, padding 1. */
const CEIL_N = Number(process.env.CEIL_N ?? 64);

/** n CIFAR-10 images decoded at size (upscaled for the photo-sized case: the views' work is set by their output size). */
async function cifarBatch(n: number, size = 32): Promise<Uint8Array> {
  const list = listImages(CIFAR);
  const rnd = seededRandom(1);
  const files = Array.from({ length: n }, () => list.files[Math.floor(rnd() * list.files.length)]!);
  return (await decodeImages(files, size, 3)).pixels;
}

/**
 * Multiply-adds per image of the model's convolutions and linear layers in one forward,
 * from the shapes they produce: each such layer's forward is wrapped for one small batch.
 */
function macsPerImage(model: t.nn.Module, size: number): number {
  let total = 0;
  const wrapped: t.nn.Module[] = [];
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof t.nn.Conv2d) && !(m instanceof t.nn.Linear)) continue;
    const layer = m;
    const forward = layer.forward.bind(layer);
    layer.forward = (x: t.Tensor): t.Tensor => {
      const y = forward(x);
      // Each output element is a dot product over (in channels / groups) x kernel, or in features.
      if (layer instanceof t.nn.Conv2d) {
        const [kh, kw] = typeof layer.kernelSize === 'number' ? [layer.kernelSize, layer.kernelSize] : layer.kernelSize;
        total += y.numel * (layer.inChannels / (layer.options.groups ?? 1)) * kh * kw;
      } else {
        total += y.numel * layer.inFeatures;
      }
      return y;
    };
    wrapped.push(layer);
  }
  const n = 2;
  try {
    model.eval();
    t.noGrad(() => t.tidy(() => void model.forward(t.rand([n, 3, size, size]))));
  } finally {
    model.train();
    // Back to the class's forward.
    for (const m of wrapped) delete (m as { forward?: unknown }).forward;
  }
  return total / n;
}

interface Pretrainer {
  /** The whole step: views, forward, loss, backward, LARS. */
  step: () => void;
  /** The model's part on fixed views [2N, 3, H, W] (v1 then v2). */
  modelStep: (views: t.Tensor) => void;
  views: () => void;
  macsPerImage: number;
  params: number;
  dispose: () => void;
}

function pretrainer(images: t.Tensor, depth: 18 | 50 = 18): Pretrainer {
  const size = images.shape[2]!;
  const model = t.nn.prepareModel(new t.SimCLRModel({ encoder: { depth, cifarStem: size <= 32 } }));
  const macs = macsPerImage(model, size);
  const batch = images.shape[0]!;
  const optimizer = new t.LARS(model.namedParameters(), { lr: t.scaleLearningRate(1.0, batch), weightDecay: 1e-4 });
  // The training step itself (src/train/steps.ts), as `simclr pretrain` runs it.
  const state: PretrainState = { model, optimizer, views: t.simclrViewOptions(size), norm: CIFAR_NORM, temperature: 0.5 };
  const at = { stage: 'bench', step: 0, lr: t.scaleLearningRate(1.0, batch) };
  return {
    step: () => void pretrainStep(state, images, at),
    modelStep: (views) => void pretrainUpdate(state, views, at),
    views: () => t.tidy(() => void t.simclrViews(images, state.views)),
    macsPerImage: macs,
    params: model.parameterCount(),
    dispose: () => (optimizer.dispose(), model.dispose()),
  };
}

const seconds = (fn: () => void): number => {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
};

/** A large channels-last 3x3 convolution's forward at the step's dtype: TFLOP/s. */
function convCeiling(dtype: t.DType): { run: () => number; dispose: () => void } {
  const [c, hw] = [256, 32];
  const x = t.keep(t.randn([CEIL_N, c, hw, hw]).to(dtype).contiguous('channels_last'));
  const w = t.keep(t.randn([c, c, 3, 3]).mul(0.02).to(dtype).contiguous('channels_last'));
  const flops = 2 * CEIL_N * c * hw * hw * c * 9;
  const once = (): number => seconds(() => t.noGrad(() => t.tidy(() => void t.F.conv2d(x, w, null, { padding: 1 }))));
  return {
    // The median of three, each a whole forward.
    run: () => flops / median([once(), once(), once()]) / 1e12,
    dispose: () => (x.dispose(), w.dispose()),
  };
}

/** Runs fns in an order rotated by the round, so that no side always goes first. */
async function rotated(round: number, fns: (() => Promise<void> | void)[]): Promise<void> {
  for (let i = 0; i < fns.length; i++) await fns[(i + round) % fns.length]!();
}

const loadavg = (): string => {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
};

async function main(): Promise<void> {
  t.setNumThreads(THREADS);
  t.manualSeed(0);
  const compute = t.useCompute({
    precision: (process.env.PRECISION ?? 'auto') as t.ComputeOptions['precision'],
    channelsLast: (process.env.CHANNELS_LAST ?? 'auto') as t.ComputeOptions['channelsLast'],
  });
  const blasLib = t.native.blasInfo();
  const addonAllocator = (t.runtimeInfo() as { allocator?: string }).allocator ?? 'n/a';
  console.log(`load average at start: ${loadavg()}`);
  console.log(
    `simclr-ts: ${compute.precision}, ${compute.channelsLast ? 'channels-last' : 'NCHW'}, ${THREADS} threads; BLAS ${blasLib.openblasCore || blasLib.library}` +
      ` (OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE ?? 'unset'}); addon allocator: ${addonAllocator}`,
  );
  console.log(allocatorLine());
  const figures: Record<string, number | string> = {};
  for (const c of CASES) Object.assign(figures, await runCase(c, compute));
  const file = writeBenchResults('pretrain-step', figures, { threads: THREADS, rounds: ROUNDS, allocator: ALLOCATOR, precision: compute.precision, channelsLast: compute.channelsLast, cases: CASES });
  console.log(`wrote ${file}`);
  if (ALLOCATOR !== 'tuned') console.log('(run with BENCH_ALLOCATOR=glibc: both sides on glibc allocator defaults)');
}

/** Views for 512 CIFAR-10 images against one pretraining step at batch 512 (ours only). */
async function viewsFraction(): Promise<number> {
  const all = t.keep(t.fromBytes(await cifarBatch(512), [512, 3, 32, 32], 'uint8'));
  const viewTimes = [0, 1, 2, 3].map(() => seconds(() => t.tidy(() => void t.simclrViews(all, t.simclrViewOptions(32)))));
  const big = pretrainer(all);
  big.step(); // warm-up
  const bigStep = seconds(big.step);
  big.dispose();
  all.dispose();
  console.log(`views for 512 CIFAR-10 images: ${(median(viewTimes.slice(1)) * 1000).toFixed(0)} ms; one pretraining step at batch 512: ${bigStep.toFixed(2)} s`);
  return median(viewTimes.slice(1)) / bigStep;
}

/** One model's step: ours, the tuned peer and the out-of-the-box peer, interleaved; its figures. */
async function runCase(c: Case, compute: t.ComputeSettings): Promise<Record<string, number | string>> {
  const BATCH = c.batch;
  const out: Record<string, number | string> = {};
  const viewFraction = c.size <= 32 ? await viewsFraction() : null;
  const images = t.keep(t.fromBytes(await cifarBatch(BATCH, c.size), [BATCH, 3, c.size, c.size], 'uint8'));
  const ours = pretrainer(images, c.depth);
  const fixedViews = t.keep(t.tidy(() => t.cat(t.simclrViews(images, t.simclrViewOptions(c.size)))));
  const file = join(__dirname, `pretrain-images-${process.pid}.safetensors`);
  t.saveSafetensors(file, { images, views: fixedViews });
  const tuned = new PyTorchPeer('same', 'pytorch tuned');
  const plain = new PyTorchPeer('out-of-the-box', 'pytorch default');
  type Init = { macs_per_image: number; params: number; bf16: boolean; channels_last: boolean };
  type Info = { torch: string; threads: number; openblas_core: string; env: Record<string, string> };
  let inits: [Init, Init];
  try {
    inits = [
      await tuned.call<Init>({ op: 'pretrain_init', images: file, threads: THREADS, tuned: true, precision: compute.precision, channels_last: compute.channelsLast, depth: c.depth, size: c.size }),
      await plain.call<Init>({ op: 'pretrain_init', images: file, threads: THREADS, tuned: false, depth: c.depth, size: c.size }),
    ];
  } finally {
    rmSync(file);
  }
  let agree = true;
  for (const [peer, init] of [
    [tuned, inits[0]],
    [plain, inits[1]],
  ] as const) {
    const info = await peer.call<Info>({ op: 'info' });
    const env = Object.entries(info.env).map(([k, v]) => `${k}=${v || 'unset'}`).join(' ');
    console.log(
      `${peer.label}: torch ${info.torch}, ${init.bf16 ? 'bf16 autocast' : 'fp32'}, ${init.channels_last ? 'channels-last' : 'NCHW'}, ${info.threads} threads, OpenBLAS ${info.openblas_core || '?'}; ${env}`,
    );
    // The same model on both sides: same parameter count and multiply-adds.
    if (init.params !== ours.params || Math.abs(init.macs_per_image - ours.macsPerImage) > 0.5) {
      agree = false;
      console.log(`WARNING: ${peer.label} model differs: ${init.params} parameters, ${init.macs_per_image} MACs/image (ours ${ours.params}, ${ours.macsPerImage})`);
    }
  }
  console.log(`model: ${ours.params} parameters, ${(ours.macsPerImage / 1e6).toFixed(1)} M multiply-adds per image forward (conv + linear, counted from the layers${agree ? "; PyTorch's hooks count the same" : ''})`);

  const ceiling = convCeiling(compute.precision === 'bf16' ? 'bfloat16' : 'float32');
  // Warm-up: allocator, oneDNN primitive caches, both parts on every side.
  ours.step();
  ours.modelStep(fixedViews);
  ceiling.run();
  for (const p of [tuned, plain]) await p.call({ op: 'pretrain_run', steps: 1 });
  await tuned.call({ op: 'pretrain_run', steps: 1, part: 'model' });

  const s = { ours: [] as number[], tuned: [] as number[], plain: [] as number[], oursModel: [] as number[], tunedModel: [] as number[], oursViews: [] as number[], tunedViews: [] as number[], ceiling: [] as number[] };
  const peerSeconds = async (p: PyTorchPeer, part: string): Promise<number> => (await p.call({ op: 'pretrain_run', steps: 1, part })).seconds!;
  for (let r = 0; r < ROUNDS; r++) {
    await rotated(r, [
      () => void s.ours.push(seconds(ours.step)),
      async () => void s.tuned.push(await peerSeconds(tuned, 'step')),
      async () => void s.plain.push(await peerSeconds(plain, 'step')),
    ]);
    await rotated(r, [() => void s.oursModel.push(seconds(() => ours.modelStep(fixedViews))), async () => void s.tunedModel.push(await peerSeconds(tuned, 'model'))]);
    await rotated(r, [() => void s.oursViews.push(seconds(ours.views)), async () => void s.tunedViews.push(await peerSeconds(tuned, 'views'))]);
    s.ceiling.push(ceiling.run());
    const rate = (x: number[]): string => (BATCH / x.at(-1)!).toFixed(1);
    console.log(
      `round ${r + 1}: step simclr-ts ${rate(s.ours)}, pytorch tuned ${rate(s.tuned)}, pytorch default ${rate(s.plain)} img/s; ` +
        `model part simclr-ts ${rate(s.oursModel)}, pytorch tuned ${rate(s.tunedModel)} img/s; ` +
        `views ${(s.oursViews.at(-1)! * 1000).toFixed(0)} / ${(s.tunedViews.at(-1)! * 1000).toFixed(0)} ms; ceiling ${s.ceiling.at(-1)!.toFixed(3)} TFLOP/s; load ${loadavg()}`,
    );
  }
  tuned.close();
  plain.close();
  ceiling.dispose();
  ours.dispose();

  // Per-round ratios (the two sides ran moments apart), then their median and spread.
  const ratios = (theirs: number[], mine: number[]): number[] => theirs.map((x, i) => x / mine[i]!);
  const vsTuned = ratios(s.tuned, s.ours);
  const vsPlain = ratios(s.plain, s.ours);
  const modelVsTuned = ratios(s.tunedModel, s.oursModel);
  const viewsVsTuned = ratios(s.tunedViews, s.oursViews);
  // Forward + backward (gradients of inputs and of weights: 2x the forward) = 3x the
  // forward's multiply-adds, 2 FLOPs each, over the 2 x BATCH views of a step.
  const stepFlops = 3 * 2 * ours.macsPerImage * 2 * BATCH;
  const tflops = stepFlops / median(s.ours) / 1e12;
  const modelTflops = stepFlops / median(s.oursModel) / 1e12;
  const ceilingTflops = median(s.ceiling);
  const rates = (x: number[]): string => `${(BATCH / median(x)).toFixed(1)} img/s`;

  const f = (name: string, value: number, digits = 3): string => {
    out[`${name}${c.suffix}`] = Number(value.toFixed(digits));
    return `${name}${c.suffix}=${value.toFixed(digits)}`;
  };
  const sp = (name: string, xs: number[]): string => {
    out[`${name}${c.suffix}_spread`] = spread(xs);
    return `${name}${c.suffix}_spread=${spread(xs)}`;
  };
  console.log(`load average at end: ${loadavg()}`);
  if (viewFraction !== null) console.log(`${f('views_fraction_of_step', viewFraction, 4)}  (target: <= 0.10)`);
  const encoder = c.depth === 18 && c.size <= 32 ? 'ResNet-18 CIFAR' : `ResNet-${c.depth} at ${c.size} px`;
  console.log(`SimCLR pretraining step, ${encoder} + 3-layer head, batch ${BATCH} (2 x ${BATCH} views), ${THREADS} threads, ${ROUNDS} rounds, interleaved (order rotated each round); medians:`);
  console.log(`  whole step: simclr-ts ${rates(s.ours)}; pytorch tuned ${rates(s.tuned)}; pytorch out of the box ${rates(s.plain)}`);
  console.log(`  model part on fixed views: simclr-ts ${rates(s.oursModel)}; pytorch tuned ${rates(s.tunedModel)}`);
  console.log(`  views (2 x ${BATCH}, same algorithm): simclr-ts ${(median(s.oursViews) * 1000).toFixed(0)} ms; pytorch ${(median(s.tunedViews) * 1000).toFixed(0)} ms`);
  console.log(f('pretrain_step_ratio_vs_pytorch_tuned', median(vsTuned)));
  console.log(sp('pretrain_step_ratio_vs_pytorch_tuned', vsTuned));
  console.log(f('pretrain_step_ratio_vs_pytorch', median(vsPlain)));
  console.log(sp('pretrain_step_ratio_vs_pytorch', vsPlain));
  console.log(f('model_step_ratio_vs_pytorch_tuned', median(modelVsTuned)));
  console.log(sp('model_step_ratio_vs_pytorch_tuned', modelVsTuned));
  console.log(`${f('views_ratio_vs_pytorch', median(viewsVsTuned))}  (spread ${spread(viewsVsTuned)})`);
  sp('views_ratio_vs_pytorch', viewsVsTuned);
  console.log(`step: ${(stepFlops / 1e12).toFixed(3)} TFLOP counted (3 x forward multiply-adds x 2)`);
  console.log(`${f('achieved_tflops', tflops)}  (whole step; model part alone: ${modelTflops.toFixed(3)})`);
  console.log(`${f(`${compute.precision}_conv_ceiling_tflops`, ceilingTflops)}  (3x3 conv forward, [${CEIL_N}, 256, 32, 32] -> 256, channels-last; spread ${spread(s.ceiling)})`);
  console.log(f('fraction_of_ceiling', tflops / ceilingTflops));
  images.dispose();
  fixedViews.dispose();
  return out;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
