// The demo's recipe over several seeds (seed = label subset + initialisation + views), so
// that the README's claim about the demo is a mean with its standard error, not one draw.
// Each seed is a `simclr demo` run in its own folder under --out; a stopped bench continues
// where it stopped (the demo resumes what it finds).
//
//   npm run bench:demo-seeds                  seeds 0-2 (about 20 min each on 2 cores)
//   npm run bench:demo-seeds -- --seeds 0-4 --out runs/demo-seeds [--quick]
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mean, sd, se, seedList, type StageResult } from './stage-runs';

function main(): number {
  const { values } = parseArgs({ options: { seeds: { type: 'string', default: '0-2' }, out: { type: 'string', default: join('runs', 'demo-seeds') }, quick: { type: 'boolean', default: false }, threads: { type: 'string', default: '2' } } });
  const seeds = seedList(values.seeds!);
  if (seeds.length < 2 || seeds.some((s) => !Number.isInteger(s) || s < 0)) {
    console.error(`demo-seeds: --seeds must name at least two seeds (0-2 or 0,3,5), got '${values.seeds}'`);
    return 2;
  }
  const cli = join(__dirname, '..', 'src', 'cli', 'main.js');
  const byStage = new Map<string, number[]>();
  const valByStage = new Map<string, number[]>();
  for (const seed of seeds) {
    const dir = join(values.out!, `${values.quick ? 'quick-' : ''}seed-${seed}`);
    const started = performance.now();
    const res = spawnSync(process.execPath, [cli, 'demo', '--seed', String(seed), '--out', dir, '--threads', values.threads!, ...(values.quick ? ['--quick'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (res.status !== 0) {
      console.error(`demo-seeds: seed ${seed} stopped (exit ${res.status}); run the bench again to continue`);
      return res.status ?? 1;
    }
    const file = join(dir, 'results.json');
    if (!existsSync(file)) throw new Error(`${file}: no results`);
    const results = (JSON.parse(readFileSync(file, 'utf8')) as { results: StageResult[] }).results;
    const line: string[] = [];
    for (const r of results) {
      const kind = r.stage.replace(/-.*/, '');
      byStage.set(kind, [...(byStage.get(kind) ?? []), r.top1]);
      if (r.val_top1 !== undefined) valByStage.set(kind, [...(valByStage.get(kind) ?? []), r.val_top1]);
      line.push(`${kind} ${r.top1.toFixed(2)}${r.val_top1 !== undefined ? ` (val ${r.val_top1.toFixed(2)})` : ''}`);
    }
    console.log(`seed ${seed}: ${line.join(', ')}  [${((performance.now() - started) / 60000).toFixed(1)} min this session]`);
  }
  console.log(`\ndemo over seeds ${seeds.join(', ')}${values.quick ? ' (--quick)' : ''}: test top-1 mean ± sd (validation mean)`);
  for (const kind of ['supervised', 'finetune', 'distill']) {
    const v = byStage.get(kind) ?? [];
    const val = valByStage.get(kind) ?? [];
    console.log(`  ${kind.padEnd(11)} ${mean(v).toFixed(2)} ± ${sd(v).toFixed(2)}${val.length ? `  (validation ${mean(val).toFixed(2)})` : ''}`);
    console.log(`demo_${kind}_top1_mean=${mean(v).toFixed(2)}`);
  }
  const base = byStage.get('supervised') ?? [];
  for (const kind of ['finetune', 'distill']) {
    const diffs = (byStage.get(kind) ?? []).map((x, i) => x - base[i]!);
    console.log(`demo_${kind}_margin_mean=${mean(diffs).toFixed(2)}`);
    console.log(`demo_${kind}_margin_se=${se(diffs).toFixed(2)}`);
  }
  return 0;
}

process.exitCode = main();
