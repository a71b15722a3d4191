// The paper's four claims about label efficiency, measured on natural images (CIFAR-10):
// for encoder widths 0.25, 0.5 and 1 pretrained for the same number of epochs, the
// baseline, fine-tuned and distilled test top-1 at 1% and 10% of the labels (1%: over
// seeds), and the baseline on all labels. Long: run it in the background; it continues
// where it stopped (each stage is skipped when its run folder already records it).
//
//   npm run bench:claims                                   widths 0.25,0.5,1, seeds 0,1
//   npm run bench:claims -- --widths 0.25 --pretrain-epochs 4 --out runs/claims
//   npm run bench:claims -- --table                        the table of what has finished
//
// Pretraining runs once per width (seed 0); a seed then draws the validation split, the
// label subset, the classifiers' initialisation and their views, in a copy of that run
// folder. Settings are the library's defaults except the epochs below (the budget); no
// setting here was chosen on the test set.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, mean, pretrainDone, results, runCli, se, seedList } from './stage-runs';
import { cellsFromLog, claimFigures, type ClaimCell, type ClaimStage } from './claims-cells';
import { writeBenchResults } from './results-file';

const DATA = join('..', 'shared', 'datasets', 'cifar10');

/** Each stage's epochs per label fraction: about the same number of steps at 1% and 10%. */
const EPOCHS: Record<string, { finetune: number; supervised: number; distill: number }> = {
  '1%': { finetune: 60, supervised: 120, distill: 2 },
  '10%': { finetune: 15, supervised: 30, distill: 2 },
  '100%': { finetune: 0, supervised: 10, distill: 0 },
};
const FRACTIONS = ['1%', '10%', '100%'] as const;
const pct = (labels: string): string => `${labels.replace('%', '')}pct`;

interface Plan {
  out: string;
  data: string;
  widths: number[];
  seeds: number[];
  pretrainEpochs: number;
  threads: string;
}

const widthDir = (p: Plan, w: number): string => join(p.out, `w${w}`);
const stageDir = (p: Plan, w: number, labels: string, seed: number): string => join(widthDir(p, w), `${pct(labels)}-seed${seed}`);

/** The (labels, seed) runs a width needs: every seed at 1%, the first at 10% and 100%. */
function cells(p: Plan): [string, number][] {
  return FRACTIONS.flatMap((labels) => (labels === '1%' ? p.seeds : [p.seeds[0]!]).map((seed) => [labels, seed] as [string, number]));
}

function runWidth(p: Plan, w: number): boolean {
  const pre = join(widthDir(p, w), 'pretrain');
  const common = ['--threads', p.threads];
  if (!pretrainDone(pre)) {
    const args = existsSync(join(pre, 'config.json'))
      ? ['pretrain', '--out', pre, '--resume', ...common]
      : ['pretrain', '--data', join(p.data, 'train'), '--test-data', join(p.data, 'test'), '--out', pre, '--width', String(w), '--epochs', String(p.pretrainEpochs), '--seed', '0', ...common];
    if (!runCli(CLI, args, `claims: width ${w} pretraining`)) return false;
  }
  for (const [labels, seed] of cells(p)) {
    const dir = stageDir(p, w, labels, seed);
    if (!existsSync(join(dir, 'pretrain.safetensors'))) {
      mkdirSync(dir, { recursive: true });
      for (const f of ['config.json', 'pretrain.json', 'pretrain.safetensors']) copyFileSync(join(pre, f), join(dir, f));
    }
    const epochs = EPOCHS[labels]!;
    for (const stage of ['supervised', 'finetune', 'distill'] as const) {
      if (epochs[stage] === 0 || results(dir).some((r) => r.stage === `${stage}-${pct(labels)}`)) continue;
      const from = stage === 'distill' ? '--teacher' : '--from';
      const args = [stage, from, dir, '--labels', labels, '--epochs', String(epochs[stage]), '--seed', String(seed), ...common];
      if (!runCli(CLI, args, `claims: width ${w} ${labels} seed ${seed} ${stage}`)) return false;
    }
  }
  return true;
}

/** The finished cells as a table (means over seeds), the name=value figures and the claims. */
function report(p: Plan): void {
  const found = finishedCells(p);
  const top1 = (w: number, labels: string, stage: string): { test: number[]; val: number[] } =>
    found.find((c) => c.width === w && c.labels === labels && c.stage === stage) ?? { test: [], val: [] };
  const fmt = (v: number[]): string => (v.length === 0 ? '-' : v.length === 1 ? v[0]!.toFixed(2) : `${mean(v).toFixed(2)} ± ${se(v).toFixed(2)} (n=${v.length})`);
  console.log(`\nCIFAR-10 test top-1 (%), pretraining ${p.pretrainEpochs} epochs; 1%: mean ± standard error over seeds ${p.seeds.join(', ')}; validation top-1 in brackets`);
  console.log('| width | labels | baseline | fine-tuned | distilled (same size) |');
  console.log('|---|---|---|---|---|');
  for (const w of p.widths) {
    for (const labels of FRACTIONS) {
      const row = (['supervised', 'finetune', 'distill'] as const).map((s) => {
        const { test, val } = top1(w, labels, s);
        return test.length ? `${fmt(test)} [${val.length ? mean(val).toFixed(2) : '-'}]` : '-';
      });
      console.log(`| ${w} | ${labels} | ${row.join(' | ')} |`);
      for (const s of ['supervised', 'finetune', 'distill']) {
        const { test } = top1(w, labels, s);
        if (test.length) console.log(`claims_w${w}_${pct(labels)}_${s}_top1=${mean(test).toFixed(2)}`);
      }
    }
  }
  // Margins at 1% are paired by seed (same labels, same validation split); one seed has no standard error.
  const spread = (d: number[]): string => (d.length > 1 ? `se ${se(d).toFixed(2)}` : 'one seed, no se');
  for (const w of p.widths) {
    const base = top1(w, '1%', 'supervised').test;
    const ft = top1(w, '1%', 'finetune').test;
    const dist = top1(w, '1%', 'distill').test;
    if (base.length && ft.length === base.length) {
      const d = ft.map((x, i) => x - base[i]!);
      console.log(`claims_w${w}_1pct_finetune_margin=${mean(d).toFixed(2)} (${spread(d)})`);
    }
    if (ft.length && dist.length === ft.length) {
      const d = dist.map((x, i) => x - ft[i]!);
      console.log(`claims_w${w}_1pct_distill_over_teacher=${mean(d).toFixed(2)} (${spread(d)})`);
    }
    const ft10 = top1(w, '10%', 'finetune').test;
    const all = top1(w, '100%', 'supervised').test;
    if (ft10.length && all.length) console.log(`claims_w${w}_10pct_finetune_minus_all_labels_baseline=${(mean(ft10) - mean(all)).toFixed(2)}`);
  }
  if (found.length) console.log(`claims: wrote ${writeBenchResults('claims', claimFigures(found), { cells: found, pretrainEpochs: p.pretrainEpochs })}`);
}

/** Every finished cell with its seeds, from the run folders. */
function finishedCells(p: Plan): ClaimCell[] {
  const out: ClaimCell[] = [];
  for (const width of p.widths) {
    for (const labels of FRACTIONS) {
      for (const stage of ['supervised', 'finetune', 'distill'] as ClaimStage[]) {
        const cell: ClaimCell = { width, labels, stage, seeds: [], test: [], val: [] };
        for (const [l, seed] of cells(p)) {
          const r = l === labels ? results(stageDir(p, width, labels, seed)).find((x) => x.stage === `${stage}-${pct(labels)}`) : undefined;
          if (!r) continue;
          cell.seeds.push(seed);
          cell.test.push(r.top1);
          if (r.val_top1 !== undefined) cell.val.push(r.val_top1);
        }
        if (cell.test.length) out.push(cell);
      }
    }
  }
  return out;
}

function main(): number {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: join('runs', 'claims') },
      data: { type: 'string', default: DATA },
      widths: { type: 'string', default: '0.25,0.5,1' },
      seeds: { type: 'string', default: '0,1' },
      'pretrain-epochs': { type: 'string', default: '4' },
      threads: { type: 'string', default: '2' },
      table: { type: 'boolean', default: false },
      'from-log': { type: 'string' },
    },
  });
  if (values['from-log']) return convertLog(values['from-log']);
  const widths = values.widths!.split(',').map(Number);
  const seeds = seedList(values.seeds!);
  const pretrainEpochs = Number(values['pretrain-epochs']);
  if (widths.some((w) => !(w > 0 && w <= 8))) return usage(`--widths must be multipliers in (0, 8], got '${values.widths}'`);
  if (seeds.length < 2 || seeds.some((s) => !Number.isInteger(s) || s < 0)) return usage(`--seeds must name at least two seeds, got '${values.seeds}'`);
  if (!Number.isInteger(pretrainEpochs) || pretrainEpochs < 1) return usage(`--pretrain-epochs must be a whole number of epochs, got '${values['pretrain-epochs']}'`);
  if (!existsSync(join(values.data!, 'train')) || !existsSync(join(values.data!, 'test'))) return usage(`${values.data}: expected CIFAR-10 as an image folder with train/ and test/ (--data)`);
  const plan: Plan = { out: values.out!, data: values.data!, widths, seeds, pretrainEpochs, threads: values.threads! };
  if (!values.table) {
    for (const w of widths) {
      const started = performance.now();
      if (!runWidth(plan, w)) return 1;
      console.log(`claims: width ${w} done (${((performance.now() - started) / 60000).toFixed(1)} min this time)`);
    }
  }
  report(plan);
  return 0;
}

/** The tables a finished run printed (the run folders gone) as the results file, saying when they were measured. */
function convertLog(file: string): number {
  if (!existsSync(file)) return usage(`${file}: no such file (--from-log)`);
  const cells = cellsFromLog(readFileSync(file, 'utf8'));
  const dates = execFileSync('git', ['log', '--format=%ad', '--date=short', '--', file], { encoding: 'utf8' }).trim().split('\n');
  const measured = dates.at(-1) === dates[0] ? `${dates[0]}` : `${dates.at(-1)} to ${dates[0]}`;
  const figures = claimFigures(cells);
  for (const [k, v] of Object.entries(figures)) console.log(`${k}=${v}`);
  console.log(`claims: wrote ${writeBenchResults('claims', figures, { cells, pretrainEpochs: 4, source: `converted from ${file}`, measured })}`);
  return 0;
}

function usage(message: string): number {
  console.error(`claims: ${message}`);
  return 2;
}

process.exitCode = main();
