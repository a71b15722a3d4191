// `simclr demo`: the demo's constant plan (src/run/demo.ts), run as a pipeline.
import { join } from 'node:path';
import { UsageError, type GLOBAL_OPTIONS, type Parsed } from './options';
import type { COMMANDS } from './specs';
import { runPipelineAndReport } from './pipeline';
import { demoPlan, leadProcess } from '../run';

export async function demoCommand({ values: o }: { values: Parsed<typeof COMMANDS.demo.options & typeof GLOBAL_OPTIONS> }): Promise<number> {
  // Each worker would name the folder by its own clock: with workers, the folder is given.
  if (!o.out && process.env.WORLD_SIZE && process.env.WORLD_SIZE !== '1') throw new UsageError('demo on several workers (--nproc) needs --out RUN, the folder they share');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const out = o.out ?? join('runs', `demo-${stamp}`);
  const started = performance.now();
  const lead = leadProcess();
  if (lead) console.log(`simclr demo${o.quick ? ' --quick' : ''}: Fashion-MNIST, ${o.labels} of the labels; pretrain on all images, fine-tune, distill, and the supervised baseline`);
  // Running the demo again on the same folder continues it (the pipeline resumes what it finds).
  const again = `simclr demo${o.quick ? ' --quick' : ''} --out ${out}`;
  const code = await runPipelineAndReport({ ...demoPlan({ quick: o.quick, out, labels: o.labels, seed: o.seed }), compute: { threads: o.threads, precision: o.precision, channelsLast: o.channelsLast } }, again);
  if (code === 0 && lead) console.log(`demo finished in ${((performance.now() - started) / 60000).toFixed(1)} min; run folder ${out}`);
  return code;
}
