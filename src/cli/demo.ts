// `simclr demo`: Fashion-MNIST in the paper's label regime, as a user's workflow (src/run/demo).
import { join } from 'node:path';
import { UsageError, type GLOBAL_OPTIONS, type Parsed } from './options';
import type { COMMANDS } from './specs';
import { exitFor } from './train-commands';
import { parseBudget } from '../run/budget';
import { runDemo } from '../run/demo';

/** The demo's budget (seconds; undefined: its own) and run folder, checked: it runs in one process. */
export function demoSettings(o: { budget?: string; out?: string }): { budget?: number; out: string } {
  if (process.env.WORLD_SIZE && process.env.WORLD_SIZE !== '1') throw new UsageError('the demo runs in one process: its budget is planned for one (give --threads for the cores)');
  let budget: number | undefined;
  try {
    budget = o.budget === undefined ? undefined : parseBudget(o.budget);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return { ...(budget ? { budget } : {}), out: o.out ?? join('runs', `demo-${stamp}`) };
}

export async function demoCommand({ values: o }: { values: Parsed<typeof COMMANDS.demo.options & typeof GLOBAL_OPTIONS> }): Promise<number> {
  const { budget, out } = demoSettings(o);
  const started = performance.now();
  console.log(`simclr demo${o.quick ? ' --quick' : ''}: Fashion-MNIST as unlabeled images; pretrain, choose ${o.count} to label, the simulated annotator labels them, then the baseline, fine-tuning and distillation`);
  const outcome = await runDemo({ out, quick: o.quick, seed: o.seed, count: o.count, ...(budget ? { budget } : {}), compute: { threads: o.threads, precision: o.precision, channelsLast: o.channelsLast } });
  if (outcome === 'finished') console.log(`demo finished in ${((performance.now() - started) / 60000).toFixed(1)} min; run folder ${out}`);
  // Running the demo again on the same folder continues it.
  return exitFor('the demo', outcome, `simclr demo${o.quick ? ' --quick' : ''} --out ${out}`);
}
