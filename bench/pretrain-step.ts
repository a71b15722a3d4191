// The full SimCLR pretraining step (two views, forward of both through encoder and head,
// NT-Xent, backward, LARS) of ResNet-18 (CIFAR stem) at batch 256 on CIFAR-10 images,
// against the same step in Python PyTorch (bench/py/simclr_step.py) with its defaults
// (float32, NCHW) and at its best (channels-last + bfloat16 autocast), interleaved; and
// the cost of the views for a batch of 512 as a fraction of a step at batch 512.
// Ours runs with the settings the process picks for this machine (PRECISION and
// CHANNELS_LAST override, as --precision and --channels-last do).
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import * as t from '../src';
import { decodeImages, listImages, seededRandom } from '../src/data';
import { PyTorchPeer, median } from './peer';
import { DATASETS } from '../test/helpers';

const BATCH = Number(process.env.BATCH ?? 256);
const THREADS = Number(process.env.THREADS ?? 2);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CIFAR = process.env.CIFAR ?? join(DATASETS, 'cifar10', 'train');

async function cifarBatch(n: number): Promise<Uint8Array> {
  const list = listImages(CIFAR);
  const rnd = seededRandom(1);
  const files = Array.from({ length: n }, () => list.files[Math.floor(rnd() * list.files.length)]!);
  return (await decodeImages(files, 32, 3)).pixels;
}

function pretrainer(images: t.Tensor): { step: () => void; dispose: () => void } {
  const model = t.nn.prepareModel(new t.SimCLRModel({ encoder: { depth: 18, cifarStem: true } }));
  const batch = images.shape[0]!;
  const opt = new t.LARS(model.namedParameters(), { lr: t.scaleLearningRate(1.0, batch), weightDecay: 1e-4 });
  const views = t.simclrViewOptions(32);
  const step = (): void =>
    t.tidy(() => {
      const [v1, v2] = t.simclrViews(images, views);
      const [z1, z2] = t.nn.forwardIn(model, t.cat([v1, v2])).chunk(2);
      const { loss } = t.ntXent(z1!, z2!, { temperature: 0.5 });
      opt.zeroGrad();
      loss.backward();
      opt.step();
    });
  return { step, dispose: () => (opt.dispose(), model.dispose()) };
}

const seconds = (fn: () => void): number => {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
};

async function main(): Promise<void> {
  t.setNumThreads(THREADS);
  t.manualSeed(0);
  const compute = t.useCompute({
    precision: (process.env.PRECISION ?? 'auto') as t.ComputeOptions['precision'],
    channelsLast: (process.env.CHANNELS_LAST ?? 'auto') as t.ComputeOptions['channelsLast'],
  });
  const blasLib = t.native.blasInfo();
  console.log(`simclr-ts settings: ${compute.precision}, ${compute.channelsLast ? 'channels-last' : 'NCHW'}; BLAS ${blasLib.openblasCore || blasLib.library}`);
  const pixels = await cifarBatch(512);
  const all = t.keep(t.fromBytes(pixels, [512, 3, 32, 32], 'uint8'));
  const images = t.keep(all.slice(0, 0, BATCH));

  // 1. Views for 512 images against one pretraining step at batch 512.
  const viewTimes = [0, 1, 2, 3].map(() => seconds(() => t.tidy(() => t.simclrViews(all, t.simclrViewOptions(32)))));
  const big = pretrainer(all);
  big.step(); // warm-up
  const bigStep = seconds(big.step);
  big.dispose();
  const viewFraction = median(viewTimes.slice(1)) / bigStep;

  // 2. Step at BATCH, ours against PyTorch, interleaved.
  const file = join(__dirname, `pretrain-images-${process.pid}.safetensors`);
  t.saveSafetensors(file, { images });
  const peer = new PyTorchPeer();
  await peer.call({ op: 'pretrain_init', images: file, threads: THREADS });
  rmSync(file);
  const ours = pretrainer(images);
  ours.step();
  await peer.call({ op: 'pretrain_run', steps: 1 });
  await peer.call({ op: 'pretrain_run', steps: 1, best: true });
  const oursRate: number[] = [];
  const theirsRate: number[] = [];
  const bestRate: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    oursRate.push(BATCH / seconds(ours.step));
    theirsRate.push(BATCH / (await peer.call({ op: 'pretrain_run', steps: 1 })).seconds!);
    bestRate.push(BATCH / (await peer.call({ op: 'pretrain_run', steps: 1, best: true })).seconds!);
    console.log(`round ${r + 1}: simclr-ts ${oursRate.at(-1)!.toFixed(1)} img/s, pytorch default ${theirsRate.at(-1)!.toFixed(1)} img/s, pytorch best ${bestRate.at(-1)!.toFixed(1)} img/s`);
  }
  peer.close();
  ours.dispose();
  const ratio = median(oursRate) / median(theirsRate);
  console.log(`views for 512 CIFAR-10 images: ${(median(viewTimes.slice(1)) * 1000).toFixed(0)} ms; one pretraining step at batch 512: ${bigStep.toFixed(2)} s`);
  console.log(`views_fraction_of_step=${viewFraction.toFixed(4)}  (target: <= 0.10)`);
  console.log(`SimCLR pretraining step, ResNet-18 CIFAR + 3-layer head, batch ${BATCH} (2 x ${BATCH} views), ${THREADS} threads, ${ROUNDS} rounds, interleaved`);
  console.log(
    `simclr-ts: ${median(oursRate).toFixed(1)} img/s; pytorch 1.13 default (fp32, NCHW): ${median(theirsRate).toFixed(1)} img/s; ` +
      `pytorch 1.13 best (channels-last + bf16 autocast): ${median(bestRate).toFixed(1)} img/s (medians)`,
  );
  console.log(`pretrain_step_ratio_vs_pytorch=${ratio.toFixed(3)}  (target: >= 2.2)`);
  console.log(`pretrain_step_ratio_vs_pytorch_best=${(median(oursRate) / median(bestRate)).toFixed(3)}  (target: >= 1.0)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
