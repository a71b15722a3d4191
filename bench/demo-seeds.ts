// The demo over several seeds (seed = which images are suggested, the held-back and random
// draws, initialisation and views), so that what the README says of the demo is a mean with
// its standard error, not one draw. Each seed is a `simclr demo` run in its own folder under
// --out; a stopped bench continues where it stopped (the demo resumes what it finds).
//
//   npm run bench:demo-seeds                  seeds 0-2 (about 18 min each on 2 cores)
//   npm run bench:demo-seeds -- --seeds 0-4 --out runs/demo-seeds [--quick]
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mean, se, seedList, type StageResult } from './stage-runs';
import { writeBenchResults } from './results-file';
import { DEMO_ROWS, errorsRemoved } from '../src/run';

interface SeedRun {
  seed: number;
  top1: Record<string, number>;
  val: Record<string, number>;
  /** the pipeline's minutes against its budget */
  budget: { seconds: number; actualSeconds?: number };
}

function runSeed(seed: number, o: { out: string; quick: boolean; threads: string }): SeedRun | null {
  const cli = join(__dirname, '..', 'src', 'cli', 'main.js');
  const dir = join(o.out, `${o.quick ? 'quick-' : ''}seed-${seed}`);
  const res = spawnSync(process.execPath, [cli, 'demo', '--seed', String(seed), '--out', dir, '--threads', o.threads, ...(o.quick ? ['--quick'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (res.status !== 0) {
    console.error(`demo-seeds: seed ${seed} stopped (exit ${res.status}); run the bench again to continue`);
    return null;
  }
  const results = (JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as { results: StageResult[] }).results;
  const budgetFile = join(dir, 'budget.json');
  const budget = existsSync(budgetFile) ? (JSON.parse(readFileSync(budgetFile, 'utf8')) as { budget: number; actualSeconds?: number }) : { budget: NaN };
  const run: SeedRun = { seed, top1: {}, val: {}, budget: { seconds: budget.budget, ...(budget.actualSeconds ? { actualSeconds: budget.actualSeconds } : {}) } };
  for (const r of results) {
    run.top1[r.stage] = r.top1;
    if (r.val_top1 !== undefined) run.val[r.stage] = r.val_top1;
  }
  return run;
}

const twoDecimals = (x: number) => Number(x.toFixed(2));

/** Means, standard errors, and the share of each baseline's errors the SimCLR models remove, paired by seed. */
function figuresOf(runs: SeedRun[]): Record<string, number> {
  const figures: Record<string, number> = {};
  for (const [stage] of DEMO_ROWS) {
    const v = runs.map((r) => r.top1[stage]!);
    figures[`demo_${stage}_top1_mean`] = twoDecimals(mean(v));
    figures[`demo_${stage}_top1_se`] = twoDecimals(se(v));
    figures[`demo_${stage}_val_top1_mean`] = twoDecimals(mean(runs.map((r) => r.val[stage]!)));
  }
  for (const model of ['finetune-suggested', 'distill-suggested']) {
    for (const [base, tag] of [['supervised-suggested', 'same_labels'], ['supervised-random', 'random_labels']]) {
      const margins = runs.map((r) => r.top1[model]! - r.top1[base]!);
      const removed = runs.map((r) => errorsRemoved(r.top1[model]!, r.top1[base]!));
      const name = `demo_${model.replace(/-.*/, '')}_vs_baseline_${tag}`;
      figures[`${name}_margin_mean`] = twoDecimals(mean(margins));
      figures[`${name}_margin_se`] = twoDecimals(se(margins));
      figures[`${name}_errors_removed_pct_mean`] = twoDecimals(mean(removed));
      figures[`${name}_errors_removed_pct_se`] = twoDecimals(se(removed));
    }
  }
  const used = runs.filter((r) => r.budget.actualSeconds).map((r) => r.budget.actualSeconds! / r.budget.seconds);
  if (used.length) figures.demo_budget_used_mean = twoDecimals(mean(used));
  return figures;
}

function main(): number {
  const { values } = parseArgs({ options: { seeds: { type: 'string', default: '0-2' }, out: { type: 'string', default: join('runs', 'demo-seeds') }, quick: { type: 'boolean', default: false }, threads: { type: 'string', default: '2' } } });
  const seeds = seedList(values.seeds!);
  if (seeds.length < 2 || seeds.some((s) => !Number.isInteger(s) || s < 0)) {
    console.error(`demo-seeds: --seeds must name at least two seeds (0-2 or 0,3,5), got '${values.seeds}'`);
    return 2;
  }
  const runs: SeedRun[] = [];
  for (const seed of seeds) {
    const run = runSeed(seed, { out: values.out!, quick: values.quick!, threads: values.threads! });
    if (!run) return 1;
    runs.push(run);
    console.log(`seed ${seed}: ${DEMO_ROWS.map(([s]) => `${s} ${run.top1[s]?.toFixed(2)} (val ${run.val[s]?.toFixed(2)})`).join(', ')}`);
  }
  const figures = figuresOf(runs);
  for (const [k, v] of Object.entries(figures)) console.log(`${k}=${v}`);
  const name = values.quick ? 'demo-seeds-quick' : 'demo-seeds';
  console.log(`wrote ${writeBenchResults(name, figures, { seeds: runs }, 'demo-seeds')}`);
  return 0;
}

process.exitCode = main();
