// The parity recipe's supervised baseline (1% of Fashion-MNIST, 600 images; ResNet-18
// width 0.25, CIFAR stem; 120 epochs of SGD Nesterov lr 0.1 cosine, wd 5e-4, batch 256
// drop last, crop 0.5-1 + flip) trained by us and by a PyTorch peer
// (bench/py/supervised_baseline.py) on the same subsets, seed by seed, side by side
// (one thread each). A single run moves by about a point, so means over seeds are compared.
//
//   node dist/bench/baseline-peer.js    SEEDS=4 PRECISION=fp32 INTERPOLATION=bilinear PIXEL_CROPS=1
//   (PIXEL_CROPS=0: our crop boxes in fractions of a pixel; PEER=0: ours only)
//   extra arguments are passed to the PyTorch peer (e.g. --interpolation bicubic)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as t from '../src';
import { openDataset, parseLabelSpec, stratifiedSubset } from '../src/data';
import { RunFolder, datasetStats, defaultClassifierConfig, evaluateClassifier, trainClassifier } from '../src/train';

const SEEDS = Number(process.env.SEEDS ?? 4);
const FIRST = Number(process.env.FIRST_SEED ?? 0);
const PRECISION = (process.env.PRECISION ?? 'fp32') as t.Precision;
const INTERPOLATION = (process.env.INTERPOLATION ?? 'bilinear') as 'bilinear' | 'bicubic';
const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';
/** PEER=0 trains ours only (to compare variants of ours against an earlier peer run). */
const WITH_PEER = process.env.PEER !== '0';
const PEER = join(__dirname, '..', '..', 'bench', 'py', 'supervised_baseline.py');

function peer(labelsFile: string, seed: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [PEER, '--labels-file', labelsFile, '--seed', String(seed), '--interpolation', INTERPOLATION, ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve((JSON.parse(out.trim().split('\n').pop()!) as { top1: number }).top1) : reject(new Error(`PyTorch peer exited with ${code}`))));
  });
}

const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v: number[]): number => Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / Math.max(1, v.length - 1));

async function main(): Promise<void> {
  t.setNumThreads(1);
  t.useCompute({ precision: PRECISION });
  const train = await openDataset('fashion-mnist', { split: 'train' });
  const test = await openDataset('fashion-mnist', { split: 'test' });
  const norm = datasetStats(train);
  const config = defaultClassifierConfig({ epochs: 120, lr: 0.1, weightDecay: 5e-4, cropScale: [0.5, 1], dropLast: true, interpolation: INTERPOLATION, pixelAlignedCrops: process.env.PIXEL_CROPS !== '0' });
  const ours: number[] = [];
  const theirs: number[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'simclr-baseline-'));
  try {
    for (let seed = FIRST; seed < FIRST + SEEDS; seed++) {
      const subset = stratifiedSubset(train.labels!, parseLabelSpec('1%'), seed);
      const labelsFile = join(dir, `labels-${seed}.txt`);
      writeFileSync(labelsFile, subset.map((i) => `${train.ids[i]}\n`).join(''));
      const pending = WITH_PEER ? peer(labelsFile, seed) : Promise.resolve(NaN);
      t.manualSeed(seed);
      const model = new t.Classifier(new t.SimCLRModel({ encoder: { depth: 18, width: 0.25, cifarStem: true, inChannels: 1 } }), 10);
      trainClassifier({ stage: 'supervised-1pct', model, data: train, indices: subset, norm, run: new RunFolder(join(dir, `run-${seed}`)), config: { ...config, seed } });
      ours.push(evaluateClassifier(model, test, norm).top1);
      model.dispose();
      theirs.push(await pending);
      console.log(`seed ${seed}: simclr-ts ${ours.at(-1)!.toFixed(2)}  PyTorch ${theirs.at(-1)!.toFixed(2)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`simclr-ts (${PRECISION}, ${INTERPOLATION}): mean ${mean(ours).toFixed(2)}, sd ${sd(ours).toFixed(2)}`);
  console.log(`PyTorch   (fp32): mean ${mean(theirs).toFixed(2)}, sd ${sd(theirs).toFixed(2)}`);
  console.log(`baseline_1pct_mean_difference=${(mean(ours) - mean(theirs)).toFixed(2)}  (simclr-ts - PyTorch over ${SEEDS} seeds)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
