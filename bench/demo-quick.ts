// `simclr demo --quick` as a user runs it (the CLI from dist, each run in a fresh folder),
// N times: the test top-1 of each model as the demo prints it in its closing table, and
// each run's seconds, into bench/results/demo-quick.json.
//
//   npm run bench:demo-quick                     one run
//   npm run bench:demo-quick -- --runs 3 [--threads 2] [--seed 0]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, mean } from './stage-runs';
import { writeBenchResults } from './results-file';
import { DEMO_ROWS } from '../src/run';

interface DemoRun {
  run: number;
  seconds: number;
  /** test top-1 (%) and validation top-1 on the held-back labels, by stage, as printed */
  top1: Record<string, number>;
  val: Record<string, number>;
  /** this run wrote the demo's images to the cache first (once per machine) */
  wroteImages: boolean;
}

/** Runs the CLI, its output shown as it comes and kept; resolves with the exit status and the output. */
function runCli(args: string[]): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      process.stdout.write(d);
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, out }));
  });
}

/** The closing table's rows (name, test top-1, validation top-1 or '-', minutes), by stage. */
export function parseDemoTable(out: string): { top1: Record<string, number>; val: Record<string, number> } {
  const top1: Record<string, number> = {};
  const val: Record<string, number> = {};
  for (const [stage, name] of DEMO_ROWS) {
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const m = new RegExp(`^${escaped}\\s+([\\d.]+)\\s+([\\d.]+|-)\\s+[\\d.]+\\s*$`, 'm').exec(out);
    if (!m) continue;
    top1[stage] = Number(m[1]);
    if (m[2] !== '-') val[stage] = Number(m[2]);
  }
  return { top1, val };
}

async function runOnce(run: number, o: { threads?: string; seed: string }): Promise<DemoRun> {
  const out = mkdtempSync(join(tmpdir(), 'simclr-demo-quick-'));
  try {
    const args = ['demo', '--quick', '--out', out, '--seed', o.seed, ...(o.threads ? ['--threads', o.threads] : [])];
    const t0 = performance.now();
    const r = await runCli(args);
    const seconds = (performance.now() - t0) / 1000;
    if (r.status !== 0) throw new Error(`simclr ${args.join(' ')} exited with ${r.status}`);
    const { top1, val } = parseDemoTable(r.out);
    const missing = DEMO_ROWS.filter(([stage]) => top1[stage] === undefined).map(([, name]) => name);
    if (missing.length) throw new Error(`the demo's table has no row for: ${missing.join(', ')}`);
    return { run, seconds: Number(seconds.toFixed(1)), top1, val, wroteImages: r.out.includes('writing Fashion-MNIST as PNG files once') };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '1' }, threads: { type: 'string' }, seed: { type: 'string', default: '0' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    console.error(`demo-quick: --runs must be a positive integer, got '${values.runs}'`);
    return 2;
  }
  const done: DemoRun[] = [];
  for (let i = 1; i <= runs; i++) {
    done.push(await runOnce(i, { seed: values.seed!, ...(values.threads ? { threads: values.threads } : {}) }));
    console.log(`demo-quick: run ${i} of ${runs} took ${done.at(-1)!.seconds} s`);
  }
  // Over the runs, the mean (one run: its figures).
  const figures: Record<string, number> = {};
  for (const [stage] of DEMO_ROWS) figures[`demo_quick_${stage}_top1`] = Number(mean(done.map((r) => r.top1[stage]!)).toFixed(2));
  figures.demo_quick_seconds = Number(mean(done.map((r) => r.seconds)).toFixed(1));
  figures.demo_quick_runs = runs;
  for (const [name, value] of Object.entries(figures)) console.log(`${name}=${value}`);
  const rows = Object.fromEntries(DEMO_ROWS.map(([stage, name]) => [stage, name]));
  const file = writeBenchResults('demo-quick', figures, { seed: Number(values.seed), threads: values.threads ?? 'the CLI default', rows, runs: done });
  console.log(`wrote ${file}`);
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
