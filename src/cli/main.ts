#!/usr/bin/env node
// The `simclr` command: one file per subcommand.
import { Flags, UsageError } from './args';
import { tuneProcess } from '../torch/tune';

const HELP = `simclr: label-efficient image classification, the SimCLRv2 way

Usage: simclr <command> [options]

Commands:
  info                 libtorch version (CPU/CUDA), threads and devices
                       e.g. simclr info --json
  demo                 the pipeline on Fashion-MNIST with 1% of the labels (about 20 min; --quick about 3)
                       e.g. simclr demo --quick
  data                 read and cache a data set, show what is in it, write a label subset
                       e.g. simclr data --data ../shared/datasets/cifar10/train --labels 10% --out labeled.txt
  pretrain             contrastive pretraining (SimCLRv2) on all images; writes a run folder
                       e.g. simclr pretrain --data ../shared/datasets/cifar10/train --out runs/c10 --epochs 100
  finetune             fine-tune from the first head layer on a labeled subset
                       e.g. simclr finetune --from runs/c10 --labels 1%
  distill              distill the fine-tuned teacher into a student on all images
                       e.g. simclr distill --teacher runs/c10 --labels 1% --student-width 0.5
  supervised           the baseline: the same network from scratch on the labeled subset only
                       e.g. simclr supervised --from runs/c10 --labels 1%
  eval                 top-1/top-5 of the run's classifiers; --knn and --linear for the frozen encoder
                       e.g. simclr eval --model runs/c10 --test-data ../shared/datasets/cifar10/test --knn
  pipeline             pretrain, then baseline, fine-tune and distill for each label fraction
                       e.g. simclr pipeline --data fashion-mnist --labels 1%,10% --out runs/fm --pretrain-epochs 8
  predict              class and probability per image (--json for JSON)
                       e.g. simclr predict --model runs/c10 cat.jpg dog.png
  views                a grid of images beside pairs of their SimCLR views
                       e.g. simclr views --data ../shared/datasets/cifar10/train --out views.png
  help                 this text

Global options:
  --threads N          intra-op threads for libtorch (default: all cores)
  --precision P        fp32, bf16 or auto (default): bfloat16 autocast for forward passes
                       where the processor has AMX or AVX512-BF16; losses stay float32
  --channels-last M    on, off or auto (default): NHWC weights and batches where oneDNN runs
                       the convolutions
`;

async function main(argv: string[]): Promise<number> {
  tuneProcess(); // the command owns its process: OpenBLAS kernels and allocator, before libtorch loads
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(HELP);
    return 0;
  }
  const flags = new Flags(rest, ['json', 'help', 'skip-bad-images', 'resume', 'sk', 'knn', 'linear', 'quick']);
  if (flags.boolean('help')) {
    console.log(HELP);
    return 0;
  }
  const { setNumThreads, useCompute } = await import('../torch');
  const os = await import('node:os');
  const defaultThreads = Number(process.env.OMP_NUM_THREADS) || os.availableParallelism();
  setNumThreads(flags.number('threads', defaultThreads, { min: 1, max: 1024, integer: true }));
  useCompute({ precision: flags.choice('precision', ['fp32', 'bf16', 'auto'], 'auto'), channelsLast: flags.choice('channels-last', ['on', 'off', 'auto'], 'auto') });
  switch (command) {
    case 'info':
      (await import('./info')).infoCommand(flags);
      return 0;
    case 'demo':
      return (await import('./demo')).demoCommand(flags);
    case 'data':
      return (await import('./data')).dataCommand(flags);
    case 'pretrain':
      return (await import('./train-commands')).pretrainCommand(flags);
    case 'finetune':
      return (await import('./train-commands')).finetuneCommand(flags);
    case 'distill':
      return (await import('./train-commands')).distillCommand(flags);
    case 'supervised':
      return (await import('./train-commands')).supervisedCommand(flags);
    case 'eval':
      return (await import('./train-commands')).evalCommand(flags);
    case 'predict':
      return (await import('./train-commands')).predictCommand(flags);
    case 'pipeline':
      return (await import('./train-commands')).pipelineCommand(flags, rest);
    case 'views':
      return (await import('./views')).viewsCommand(flags);
    default:
      throw new UsageError(`unknown command '${command}' (try: simclr help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      console.error(`simclr: ${err.message}`);
      process.exitCode = 2;
    } else {
      console.error(`simclr: ${(err as Error)?.message ?? String(err)}`);
      if (process.env.SIMCLR_DEBUG) console.error(err);
      process.exitCode = 1;
    }
  },
);
