// `simclr demo`: the whole pipeline on Fashion-MNIST with 1% of the labels, at a budget
// that fits a laptop (about 20 minutes on 2 cores; --quick about 3).
import { join } from 'node:path';
import type { Flags } from './args';
import { Flags as FlagParser } from './args';
import { pipelineCommand } from './train-commands';

/** The demo's settings (see README): ResNet-18 width 0.25 with the CIFAR stem, 1 input channel. */
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

export async function demoCommand(flags: Flags): Promise<number> {
  const quick = flags.boolean('quick');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const out = flags.string('out', join('runs', `demo-${stamp}`));
  const labels = flags.string('labels', '1%');
  const seed = flags.number('seed', 0, { min: 0, integer: true });
  flags.rejectUnknown();
  const started = performance.now();
  console.log(`simclr demo${quick ? ' --quick' : ''}: Fashion-MNIST, ${labels} of the labels; pretrain on all images, fine-tune, distill, and the supervised baseline`);
  const args = demoArgs(quick, out, labels, seed);
  const code = await pipelineCommand(new FlagParser(args, ['resume', 'sk']), args);
  console.log(`demo finished in ${((performance.now() - started) / 60000).toFixed(1)} min; run folder ${out}`);
  return code;
}
