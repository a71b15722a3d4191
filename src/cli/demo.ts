// `simclr demo`: the whole pipeline on Fashion-MNIST with 1% of the labels, at a budget
// that fits a laptop (about 20 minutes on 2 cores; --quick about 3).
import { join } from 'node:path';
import { parseCommand, type Parsed, type ParseResult } from './options';
import { COMMANDS } from './specs';
import { pipelineCommand } from './pipeline';

/** The demo's settings (see README) as pipeline options: ResNet-18 width 0.25, CIFAR stem, 1 input channel. */
export function demoArgs(quick: boolean, out: string, labels: string, seed: number): string[] {
  return [
    '--data', 'fashion-mnist',
    '--labels', labels,
    '--out', out,
    '--width', '0.25',
    '--seed', String(seed),
    '--pretrain-epochs', quick ? '1' : '5',
    '--pretrain-batch', '256',
    ...(quick ? ['--pretrain-max-images', '10000'] : []),
    '--finetune-epochs', quick ? '20' : '60',
    '--finetune-lr', '0.05',
    '--finetune-crop-min', '0.5',
    '--supervised-epochs', quick ? '40' : '120',
    '--supervised-lr', '0.1',
    '--supervised-weight-decay', '5e-4',
    '--supervised-crop-min', '0.5',
    '--distill-epochs', quick ? '1' : '4',
    '--distill-lr', '0.1',
    '--distill-weight-decay', '5e-4',
    '--distill-crop-min', '0.5',
    ...(quick ? ['--distill-max-images', '10000'] : []),
  ];
}

export async function demoCommand({ values: o }: { values: Parsed<typeof COMMANDS.demo.options> }): Promise<number> {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const out = o.out ?? join('runs', `demo-${stamp}`);
  const started = performance.now();
  console.log(`simclr demo${o.quick ? ' --quick' : ''}: Fashion-MNIST, ${o.labels} of the labels; pretrain on all images, fine-tune, distill, and the supervised baseline`);
  // The settings are written as the pipeline's options so that `simclr pipeline` with the same
  // list reproduces the demo; they are checked by the pipeline's own table.
  const pipeline: ParseResult<typeof COMMANDS.pipeline.options> = parseCommand(COMMANDS.pipeline, demoArgs(o.quick, out, o.labels, o.seed));
  const code = await pipelineCommand(pipeline);
  console.log(`demo finished in ${((performance.now() - started) / 60000).toFixed(1)} min; run folder ${out}`);
  return code;
}
