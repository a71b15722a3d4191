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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as t from '../src';
import { writeSubsetFile } from '../src/data';
import { baselineConfig, baselineSubset, fashionMnist, mean, sd, trainBaseline } from './baseline-recipe';

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

async function main(): Promise<void> {
  t.setNumThreads(1);
  t.useCompute({ precision: PRECISION });
  const data = await fashionMnist();
  const config = baselineConfig({ interpolation: INTERPOLATION, pixelAlignedCrops: process.env.PIXEL_CROPS !== '0' });
  const ours: number[] = [];
  const theirs: number[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'simclr-baseline-'));
  try {
    for (let seed = FIRST; seed < FIRST + SEEDS; seed++) {
      const subset = baselineSubset(data, seed);
      const labelsFile = join(dir, `labels-${seed}.txt`);
      writeSubsetFile(labelsFile, data.train, subset);
      const pending = WITH_PEER ? peer(labelsFile, seed) : Promise.resolve(NaN);
      ours.push(trainBaseline(data, subset, seed, config, join(dir, `run-${seed}`)));
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
