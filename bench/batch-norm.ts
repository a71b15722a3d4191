// What --batch-norm local costs in accuracy: pretraining on 2 workers with batch norm over
// the global batch (the paper's) and over each worker's share, then the frozen encoder's kNN
// accuracy (k=200, T=0.1) on held-out training images (a validation split: the test set is
// never read). CIFAR-10: 1,000 training images a class to pretrain on and 200 others a class
// to validate on (file names in sorted order, linked into a work folder), ResNet-18 width
// 0.25, batch 256, several seeds. A run folder that holds a finished run and its kNN figure
// is reused, so a stopped bench continues with --work.
//
//   npm run bench:batch-norm -- [--seeds 0-2] [--epochs 12] [--width 0.25] [--work DIR]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, mean, pretrainDone, se, seedList } from './stage-runs';
import { writeBenchResults } from './results-file';

const { values: opts } = parseArgs({
  options: {
    seeds: { type: 'string', default: '0-2' },
    epochs: { type: 'string', default: '12' },
    width: { type: 'string', default: '0.25' },
    work: { type: 'string' },
    cifar: { type: 'string', default: join(__dirname, '..', '..', '..', 'shared', 'datasets', 'cifar10', 'train') },
  },
});
const SEEDS = seedList(opts.seeds);
const TRAIN_PER_CLASS = 1000;
const VAL_PER_CLASS = 200;
const SCOPES = ['global', 'local'] as const;

/** train/<class> and val/<class> under work: links to the first 1,000 and the next 200 images of each class. */
function splitFolders(work: string): { train: string; val: string } {
  const source = resolve(opts.cifar);
  if (!existsSync(source)) throw new Error(`${source}: CIFAR-10's training images are needed (../shared/datasets/cifar10/train)`);
  const train = join(work, 'train');
  const val = join(work, 'val');
  for (const cls of readdirSync(source).sort()) {
    const files = readdirSync(join(source, cls)).sort();
    if (files.length < TRAIN_PER_CLASS + VAL_PER_CLASS) throw new Error(`${join(source, cls)}: ${files.length} images, ${TRAIN_PER_CLASS + VAL_PER_CLASS} needed`);
    for (const [dir, part] of [[train, files.slice(0, TRAIN_PER_CLASS)], [val, files.slice(TRAIN_PER_CLASS, TRAIN_PER_CLASS + VAL_PER_CLASS)]] as const) {
      mkdirSync(join(dir, cls), { recursive: true });
      for (const f of part) if (!existsSync(join(dir, cls, f))) symlinkSync(join(source, cls, f), join(dir, cls, f));
    }
  }
  return { train, val };
}

/** A `simclr` command; its stderr and stdout into log, and an error naming it when it fails. */
function simclr(args: string[], log: string): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  writeFileSync(log, `${r.stdout}${r.stderr}`);
  if (r.status !== 0) throw new Error(`simclr ${args.join(' ')} failed (${r.status}); see ${log}`);
  return r.stdout;
}

const KNN = /kNN \(k=200, T=0\.1\) top-1 ([\d.]+)%/;

/** One seed and scope: pretrain (unless done), then kNN on the validation images; the accuracy in %. */
function runOne(work: string, data: { train: string; val: string }, scope: string, seed: number): { knn: number; seconds?: number } {
  const out = join(work, `run-${scope}-${seed}`);
  const evalLog = `${out}.eval`;
  if (existsSync(evalLog) && KNN.test(readFileSync(evalLog, 'utf8'))) return { knn: Number(KNN.exec(readFileSync(evalLog, 'utf8'))![1]) };
  const started = Date.now();
  // A checkpoint is written after each epoch: a stopped pretraining continues (--resume starts one in an empty folder).
  if (!pretrainDone(out)) {
    simclr(['pretrain', '--data', data.train, '--out', out, '--epochs', opts.epochs, '--batch', '256', '--width', opts.width, '--nproc', '2', '--batch-norm', scope, '--seed', String(seed), '--resume'], `${out}.log`);
  }
  const seconds = (Date.now() - started) / 1000;
  const printed = simclr(['eval', '--model', out, '--test-data', data.val, '--knn'], evalLog);
  const m = KNN.exec(printed);
  if (!m) throw new Error(`simclr eval --knn printed no kNN figure:\n${printed}`);
  return { knn: Number(m[1]), seconds };
}

function main(): void {
  const work = opts.work ? resolve(opts.work) : mkdtempSync(join(tmpdir(), 'simclr-batch-norm-'));
  mkdirSync(work, { recursive: true });
  const data = splitFolders(work);
  console.log(`batch norm bench: CIFAR-10, ${TRAIN_PER_CLASS * 10} images pretrained on, ${VAL_PER_CLASS * 10} held out; 2 workers, ResNet-18 width ${opts.width}, ${opts.epochs} epochs, batch 256; seeds ${SEEDS.join(', ')}; work folder ${work}`);
  const knn: Record<string, number[]> = { global: [], local: [] };
  for (const seed of SEEDS) {
    for (const scope of SCOPES) {
      const r = runOne(work, data, scope, seed);
      knn[scope]!.push(r.knn);
      console.log(`seed ${seed} --batch-norm ${scope}: kNN top-1 ${r.knn.toFixed(2)}% on the validation images${r.seconds ? ` (${Math.round(r.seconds)} s)` : ' (reused)'}`);
    }
  }
  const diffs = knn.local!.map((v, i) => v - knn.global![i]!);
  const figures: Record<string, number | string> = {
    knn_val_global_bn: Number(mean(knn.global!).toFixed(2)),
    knn_val_global_bn_se: Number(se(knn.global!).toFixed(2)),
    knn_val_local_bn: Number(mean(knn.local!).toFixed(2)),
    knn_val_local_bn_se: Number(se(knn.local!).toFixed(2)),
    knn_val_local_minus_global: Number(mean(diffs).toFixed(2)),
    knn_val_local_minus_global_se: Number(se(diffs).toFixed(2)),
  };
  for (const [k, v] of Object.entries(figures)) console.log(`${k}=${v}`);
  const verdict = Math.abs(mean(diffs)) <= 2 * se(diffs) ? 'no measurable difference' : mean(diffs) > 0 ? 'local higher' : 'local lower';
  console.log(`local minus global, paired by seed: ${mean(diffs).toFixed(2)} +- ${se(diffs).toFixed(2)} points (${verdict})`);
  const file = writeBenchResults('batch-norm', figures, { seeds: SEEDS, epochs: Number(opts.epochs), width: Number(opts.width), perSeed: knn, verdict, data: `CIFAR-10 training images: ${TRAIN_PER_CLASS}/class pretrained on, the next ${VAL_PER_CLASS}/class for kNN` });
  console.log(`wrote ${file}`);
}

main();
