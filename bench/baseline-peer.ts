// The parity recipe's supervised baseline (1% of Fashion-MNIST, 600 images; ResNet-18
// width 0.25, CIFAR stem; 120 epochs of SGD Nesterov lr 0.1 cosine, wd 5e-4, batch 256
// drop last, crop 0.5-1 + flip) trained by us and by a PyTorch peer
// (bench/py/supervised_baseline.py) on the same subsets, seed by seed, side by side
// (one thread each). A single run moves by about a point, so means over seeds are compared.
//
//   npm run bench:baseline -- --seeds 0-7      (or SEEDS=0-7; default 0-3)
//   SEEDS also takes a list (0,2,5) or a count from FIRST_SEED (SEEDS=4 FIRST_SEED=4);
//   PRECISION=fp32 INTERPOLATION=bilinear PIXEL_CROPS=1 (0: our crop boxes in fractions of
//   a pixel); PEER=0: ours only; EPOCHS=n: both sides train n epochs (a quick check only)
//   other arguments are passed to the PyTorch peer (e.g. --interpolation bicubic)
// Prints each side's mean and sd over the seeds and the paired mean difference with its
// standard error.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as t from '../src';
import { writeSubsetFile } from '../src/data';
import { baselineConfig, baselineSubset, fashionMnist, mean, pairedDifference, parseSeeds, sd, trainBaseline } from './baseline-recipe';

/** --seeds X (or --seeds=X) on the command line, else SEEDS; taken out of the peer's arguments. */
function seedArgs(argv: string[]): { seeds: string | undefined; rest: string[] } {
  const rest: string[] = [];
  let seeds: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--seeds') seeds = argv[++i];
    else if (a.startsWith('--seeds=')) seeds = a.slice('--seeds='.length);
    else rest.push(a);
  }
  return { seeds, rest };
}
const ARGS = seedArgs(process.argv.slice(2));
const SEEDS = parseSeeds(ARGS.seeds ?? process.env.SEEDS ?? '4', Number(process.env.FIRST_SEED ?? 0));
const EPOCHS = process.env.EPOCHS ? Number(process.env.EPOCHS) : undefined;
const PRECISION = (process.env.PRECISION ?? 'fp32') as t.Precision;
const INTERPOLATION = (process.env.INTERPOLATION ?? 'bilinear') as 'bilinear' | 'bicubic';
const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';
/** PEER=0 trains ours only (to compare variants of ours against an earlier peer run). */
const WITH_PEER = process.env.PEER !== '0';
const PEER = join(__dirname, '..', '..', 'bench', 'py', 'supervised_baseline.py');

function peer(labelsFile: string, seed: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [PEER, '--labels-file', labelsFile, '--seed', String(seed), '--interpolation', INTERPOLATION, ...(EPOCHS ? ['--epochs', String(EPOCHS)] : []), ...ARGS.rest], { stdio: ['ignore', 'pipe', 'inherit'] });
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
  const config = baselineConfig({ interpolation: INTERPOLATION, pixelAlignedCrops: process.env.PIXEL_CROPS !== '0', ...(EPOCHS ? { epochs: EPOCHS } : {}) });
  const ours: number[] = [];
  const theirs: number[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'simclr-baseline-'));
  try {
    for (const seed of SEEDS) {
      const subset = baselineSubset(data, seed);
      const labelsFile = join(dir, `labels-${seed}.txt`);
      writeSubsetFile(labelsFile, data.train, subset);
      const pending = WITH_PEER ? peer(labelsFile, seed) : Promise.resolve(NaN);
      ours.push(await trainBaseline(data, subset, seed, config, join(dir, `run-${seed}`)));
      theirs.push(await pending);
      console.log(`seed ${seed}: simclr-ts ${ours.at(-1)!.toFixed(2)}  PyTorch ${theirs.at(-1)!.toFixed(2)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  report(ours, theirs, SEEDS);
}

/** Each side's mean and sd, then the paired difference (ours - PyTorch) and its standard error. */
export function report(ours: number[], theirs: number[], seeds: number[]): void {
  const fmt = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
  const range = (v: number[]): string => `${fmt(Math.min(...v))}-${fmt(Math.max(...v))}`;
  const label = seeds.length > 1 && seeds.every((s, i) => i === 0 || s === seeds[i - 1]! + 1) ? `seeds ${seeds[0]}-${seeds.at(-1)}` : `seeds ${seeds.join(',')}`;
  console.log(`1% baseline, ${label} (${seeds.length}), fp32 peer, same subsets`);
  console.log(`simclr-ts (${PRECISION}, ${INTERPOLATION}): mean ${fmt(mean(ours))}, sd ${fmt(sd(ours))}, ${range(ours)}`);
  console.log(`PyTorch   (fp32): mean ${fmt(mean(theirs))}, sd ${fmt(sd(theirs))}, ${range(theirs)}`);
  const d = pairedDifference(ours, theirs);
  console.log(`baseline_1pct_mean_difference=${fmt(d.mean)}  (simclr-ts - PyTorch, mean of the ${d.n} per-seed differences)`);
  console.log(`baseline_1pct_mean_difference_se=${fmt(d.se)}  (sd of the differences / sqrt(${d.n}))`);
}

if (require.main === module) main().catch((e) => {
  console.error(e);
  process.exit(1);
});
