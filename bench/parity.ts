// Same-budget parity with a PyTorch 1.13 implementation of SimCLRv2 on Fashion-MNIST (the
// recipe and its figures from issue 5): runs `simclr pipeline` with the recipe for 1% and
// 10% of the labels and prints our six test accuracies beside PyTorch's (each must be
// within 1.5 points). About an hour on 2 cores in float32; run it in the background:
//
//   node dist/bench/parity.js [--precision bf16|fp32|auto] [--out runs/parity] [--threads 2]
//
// Each precision trains into its own folder (OUT/<precision>) and resumes where it
// stopped. When both a bf16 and an fp32 run have finished, it also prints them side by
// side (issue 6: bfloat16 must match float32 within 0.5 points).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const PYTORCH: Record<string, Record<string, number>> = {
  '1pct': { supervised: 80.8, finetune: 81.2, distill: 82.5 },
  '10pct': { supervised: 89.5, finetune: 89.3, distill: 88.7 },
};
const TOLERANCE = 1.5;
const PRECISION_TOLERANCE = 0.5;
const STAGES = ['supervised', 'finetune', 'distill'] as const;

/** The recipe, as `simclr pipeline` flags. */
export function recipeArgs(out: string): string[] {
  return [
    '--data', 'fashion-mnist',
    '--labels', '1%,10%',
    '--out', out,
    '--width', '0.25',
    '--seed', '0',
    // Pretraining: batch 256, 8 epochs (1 warm-up), T 0.5, LARS 1.0, wd 1e-4, crops 0.08-1 bilinear.
    '--pretrain-epochs', '8',
    '--pretrain-warmup-epochs', '1',
    '--pretrain-batch', '256',
    '--pretrain-lr', '1.0',
    '--pretrain-temperature', '0.5',
    '--pretrain-crop-min', '0.08',
    '--pretrain-interpolation', 'bilinear',
    // Fine-tuning from head layer 1: lr 0.05, no decay, crops 0.5-1, batch 256 dropping the
    // last partial batch (epochs per fraction below).
    '--finetune-lr', '0.05',
    '--finetune-drop-last',
    '--finetune-weight-decay', '0',
    '--finetune-crop-min', '0.5',
    '--finetune-interpolation', 'bilinear',
    // Baseline: as fine-tuning, but lr 0.1, wd 5e-4.
    '--supervised-lr', '0.1',
    '--supervised-drop-last',
    '--supervised-weight-decay', '5e-4',
    '--supervised-crop-min', '0.5',
    '--supervised-interpolation', 'bilinear',
    // Self-distillation: 3 epochs on all 60,000 images, lr 0.1, wd 5e-4.
    '--distill-epochs', '3',
    '--distill-lr', '0.1',
    '--distill-weight-decay', '5e-4',
    '--distill-crop-min', '0.5',
    '--distill-interpolation', 'bilinear',
  ];
}

interface Result {
  stage: string;
  top1: number;
  seconds?: number;
  precision?: string;
}

function readResults(dir: string): Result[] | null {
  const file = join(dir, 'results.json');
  if (!existsSync(file)) return null;
  return (JSON.parse(readFileSync(file, 'utf8')) as { results: Result[] }).results;
}

function main(): number {
  const { values } = parseArgs({ options: { precision: { type: 'string', default: 'auto' }, out: { type: 'string', default: join('runs', 'parity') }, threads: { type: 'string', default: '2' } } });
  const { precision, out: base, threads } = values as { precision: string; out: string; threads: string };
  const cli = join(__dirname, '..', 'src', 'cli', 'main.js');
  const dir = join(base, precision);
  // Epochs differ per fraction (60/20 fine-tuning, 120/40 baseline): the pipeline runs
  // once per fraction into the same folder, sharing the pretrained encoder.
  const started = performance.now();
  for (const [labels, finetuneEpochs, supervisedEpochs] of [['1%', '60', '120'], ['10%', '20', '40']] as const) {
    const args = recipeArgs(dir).map((a, i, all) => (all[i - 1] === '--labels' ? labels : a));
    args.push('--finetune-epochs', finetuneEpochs, '--supervised-epochs', supervisedEpochs, '--threads', threads, '--precision', precision);
    const res = spawnSync(process.execPath, [cli, 'pipeline', ...args], { stdio: 'inherit' });
    if (res.status !== 0) {
      console.error(`parity: the pipeline stopped (exit ${res.status}) for ${labels}; rerun to resume`);
      return res.status ?? 1;
    }
  }
  const minutes = (performance.now() - started) / 60000;
  const ours = readResults(dir)!;
  const top1 = (rs: Result[], stage: string, tag: string): number | undefined => rs.find((r) => r.stage === `${stage}-${tag}`)?.top1;
  console.log(`\nFashion-MNIST parity recipe, seed 0, ${precision} (run folder ${dir}; this invocation ${minutes.toFixed(1)} min)`);
  console.log('test top-1 (%)           simclr-ts   pytorch 1.13   difference');
  let worst = 0;
  for (const tag of ['1pct', '10pct']) {
    for (const stage of STAGES) {
      const a = top1(ours, stage, tag);
      const b = PYTORCH[tag]![stage]!;
      const d = a === undefined ? NaN : a - b;
      worst = Number.isNaN(d) ? Infinity : Math.max(worst, Math.abs(d));
      console.log(`${`${stage} ${tag}`.padEnd(24)}${(a?.toFixed(2) ?? '-').padStart(10)}${b.toFixed(1).padStart(15)}${`${d >= 0 ? '+' : ''}${d.toFixed(2)}`.padStart(13)}`);
    }
  }
  console.log(`parity_max_abs_difference=${worst.toFixed(2)}  (target: <= ${TOLERANCE})`);
  const bf16 = readResults(join(base, 'bf16'));
  const fp32 = readResults(join(base, 'fp32'));
  if (bf16 && fp32) {
    console.log('\nbfloat16 against float32, same recipe and seed');
    console.log('test top-1 (%)                bf16        fp32   difference');
    let gap = 0;
    let missing = 0;
    for (const tag of ['1pct', '10pct']) {
      for (const stage of STAGES) {
        const a = top1(bf16, stage, tag);
        const b = top1(fp32, stage, tag);
        const d = a === undefined || b === undefined ? NaN : a - b;
        if (Number.isNaN(d)) missing++;
        else gap = Math.max(gap, Math.abs(d));
        console.log(`${`${stage} ${tag}`.padEnd(24)}${(a?.toFixed(2) ?? '-').padStart(10)}${(b?.toFixed(2) ?? '-').padStart(12)}${(Number.isNaN(d) ? '-' : `${d >= 0 ? '+' : ''}${d.toFixed(2)}`).padStart(13)}`);
      }
    }
    const note = missing ? ` (${missing} of 6 not finished in both yet)` : '';
    console.log(`bf16_vs_fp32_max_abs_difference=${gap.toFixed(2)}  (target: <= ${PRECISION_TOLERANCE})${note}`);
  }
  return worst <= TOLERANCE ? 0 : 1;
}

process.exitCode = main();
