#!/usr/bin/env node
// The `simclr` command: one file per subcommand; options from one table per command (specs.ts).
import { GLOBAL_OPTIONS, UsageError, parseCommand, renderHelp, renderOptions, threadsFromEnvironment, type CommandSpec, type Parsed } from './options';
import { COMMANDS, workerOptions, type CommandName } from './specs';
import { tuneProcess } from '../torch/tune';
import { PlanError } from '../run/errors';
import { signalExitCode } from '../train/control';
import { checkDeviceHere } from './device';
import { restarter, withoutWorkerOptions, workerPlan } from './workers';

function generalHelp(): string {
  const rows = Object.values(COMMANDS).map((c) => `  ${c.name.padEnd(16)}${c.summary}\n  ${' '.repeat(16)}e.g. ${c.example}`);
  return [
    'simclr: label-efficient image classification, the SimCLRv2 way',
    '',
    'Usage: simclr <command> [options]     (simclr <command> --help: its options)',
    '',
    'Commands:',
    ...rows,
    `  ${'help'.padEnd(16)}this text`,
    '',
    'Global options (every command):',
    renderOptions(GLOBAL_OPTIONS),
    '',
  ].join('\n');
}

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

/** Applies the global options (threads, precision, layout) before any command runs. */
async function applyGlobals(values: Parsed<typeof GLOBAL_OPTIONS>): Promise<void> {
  // The command owns its process: OpenBLAS kernels and the allocator are set before libtorch loads.
  tuneProcess();
  const { setNumThreads, useCompute } = await import('../torch');
  const os = await import('node:os');
  setNumThreads(values.threads ?? threadsFromEnvironment(os.availableParallelism()));
  useCompute({ precision: values.precision, channelsLast: values.channelsLast });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(generalHelp());
    return 0;
  }
  if (!isCommand(command)) {
    throw new UsageError(`unknown command '${command}' (commands: ${Object.keys(COMMANDS).join(', ')}; try simclr help)`);
  }
  const spec: CommandSpec = COMMANDS[command];
  // Help first: a mistyped option next to --help should not hide the help.
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(renderHelp(spec));
    return 0;
  }
  // The demo's time budget is planned for one process: it takes no worker options, and says why.
  const workerFlag = command === 'demo' ? rest.find((a) => a.startsWith('--') && Object.keys(workerOptions).includes(a.replace(/^--(no-)?/, '').split('=')[0]!)) : undefined;
  if (workerFlag) throw new UsageError(`the demo runs in one process (its time budget is planned for one): leave out --nproc, --nnodes and --max-restarts (${workerFlag}); --threads sets its cores`);
  // Every command's table, checked here once; each command below reads its own typed values.
  const { globals, values, given, positionals } = parseCommand(spec, rest);
  const v = values as { device?: string; out?: string; from?: string; teacher?: string; nproc?: number; nnodes?: number; nodeRank?: number; master?: string; masterPort?: number; maxRestarts?: number; iface?: string; allowPublicRendezvous?: boolean };
  // --nproc, --nnodes, --master, --max-restarts: this process only starts and watches the workers running the same command.
  const plan = workerPlan(v);
  // --dry-run: the command line and its inputs checked, the plan printed; nothing started, loaded or written.
  if (globals.dryRun) return (await import('./dry-run')).dryRun(command, { values: values as Record<string, unknown>, given, positionals, globals }, plan);
  if (plan) {
    if (v.device !== undefined && v.device !== 'cpu') await checkDeviceHere(v.device, plan.nproc);
    const { launchLocal, PortInUseError, LaunchError } = await import('../distributed/launch');
    const args = [command, ...withoutWorkerOptions(rest)];
    return launchLocal({
      ...plan,
      script: process.argv[1]!,
      args,
      threadsPerWorker: globals.threads,
      // A training command restarts from its checkpoints; eval and demo run again as given (demo continues its --out).
      restart: restarter(command, args, { out: v.out, run: v.from ?? v.teacher }),
    }).catch((e: unknown) => {
      throw e instanceof PortInUseError || e instanceof LaunchError ? new UsageError(e.message) : e;
    });
  }
  await applyGlobals(globals);
  // Under a launcher (ours or torchrun), each worker checks its own device.
  if (v.device !== undefined && v.device !== 'cpu') await checkDeviceHere(v.device, 1);
  switch (command) {
    case 'info':
      (await import('./info')).infoCommand(parseCommand(COMMANDS.info, rest).values);
      return 0;
    case 'demo':
      return (await import('./demo')).demoCommand(parseCommand(COMMANDS.demo, rest));
    case 'data':
      return (await import('./data')).dataCommand(parseCommand(COMMANDS.data, rest));
    case 'views':
      return (await import('./views')).viewsCommand(parseCommand(COMMANDS.views, rest));
    case 'pretrain':
      return (await import('./train-commands')).pretrainCommand(parseCommand(COMMANDS.pretrain, rest));
    case 'finetune':
      return (await import('./train-commands')).finetuneCommand(parseCommand(COMMANDS.finetune, rest));
    case 'supervised':
      return (await import('./train-commands')).supervisedCommand(parseCommand(COMMANDS.supervised, rest));
    case 'distill':
      return (await import('./train-commands')).distillCommand(parseCommand(COMMANDS.distill, rest));
    case 'eval':
      return (await import('./train-commands')).evalCommand(parseCommand(COMMANDS.eval, rest));
    case 'import':
      return (await import('./import')).importCommand(parseCommand(COMMANDS.import, rest));
    case 'suggest-labels':
      return (await import('./suggest')).suggestCommand(parseCommand(COMMANDS['suggest-labels'], rest));
    case 'label':
      return (await import('./label')).labelCommand(parseCommand(COMMANDS.label, rest));
    case 'embed':
      return (await import('./embed')).embedCommand(parseCommand(COMMANDS.embed, rest));
    case 'predict':
      return (await import('./train-commands')).predictCommand(parseCommand(COMMANDS.predict, rest));
    case 'pipeline':
      return (await import('./pipeline')).pipelineCommand(parseCommand(COMMANDS.pipeline, rest));
    case 'export':
      return (await import('./export')).exportCommand(parseCommand(COMMANDS.export, rest));
    case 'serve':
      return (await import('./serve')).serveCommand(parseCommand(COMMANDS.serve, rest));
    case 'report':
      return (await import('./report')).reportCommand(parseCommand(COMMANDS.report, rest));
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const stopped = (err as { name?: string; signal?: string })?.name === 'StoppedWhileWaiting' ? (err as { signal: string }).signal : null;
    if (stopped) {
      // Stopped while a worker did not answer: end now (Gloo's threads still wait for it).
      console.error(`simclr: ${(err as Error).message}`);
      process.exit(signalExitCode(stopped));
    }
    if (err instanceof UsageError || err instanceof PlanError) {
      console.error(`simclr: ${err.message}`);
      process.exitCode = 2;
    } else {
      console.error(`simclr: ${(err as Error)?.message ?? String(err)}`);
      if (process.env.SIMCLR_DEBUG) console.error(err);
      process.exitCode = 1;
    }
  },
);
