// --dry-run, on every command: main.ts calls dryRun() once the command line is parsed and
// the launcher flags are checked. The command's own checks run (the same usage errors, exit
// 2), the inputs it names are checked without decoding an image or loading libtorch
// (src/run/check-inputs.ts), and the plan is printed: the stages in order with their main
// settings, compute, workers and any budget. Nothing is trained, started, listened on or
// written. Each command's plan: dry-run-train.ts (runs made and trained), dry-run-use.ts.
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { UsageError, threadsFromEnvironment, type GLOBAL_OPTIONS, type Parsed } from './options';
import { COMMANDS, type CommandName } from './specs';
import type { WorkerPlan } from './workers';
import { checkDeviceHere } from './device';
import { PlanError } from '../run/errors';
import { counted } from '../run/check-inputs';
import { resolveCompute } from '../torch/compute';
import { cpuFlags } from '../torch/blas';
import { threadsPerWorker } from '../distributed/launch';
import { publicRendezvousProblem } from '../distributed/rendezvous-address';
import { WorkerEnvError, workerDevice, workerEnv, type WorkerEnv } from '../distributed/env';
import { TRAINING_PLANS } from './dry-run-train';
import { USE_PLANS } from './dry-run-use';

/** A parsed command line, as each command's plan reads it. */
export interface DryInput {
  values: Record<string, unknown>;
  given: ReadonlySet<string>;
  positionals: string[];
  globals: Parsed<typeof GLOBAL_OPTIONS>;
  /** the processes a stage would run on: the launcher flags', a launcher's WORLD_SIZE, else 1 */
  worldSize: number;
}

export type Row = [label: string, text: string];

/** What a command would do: rows of settings, its stages in order, and what it would write. */
export interface DryPlan {
  rows: Row[];
  stages?: string[];
  /** the command computes with libtorch: its precision, layout and threads are shown */
  computes?: boolean;
  writes?: string[];
}

export type Planner = (input: DryInput) => Promise<DryPlan>;

const PLANS: Record<CommandName, Planner> = { ...TRAINING_PLANS, ...USE_PLANS };

const DRY_RUN_DONE = 'dry run: nothing was trained or written';

export async function dryRun(command: CommandName, parsed: Omit<DryInput, 'worldSize'>, launcher: WorkerPlan | null): Promise<number> {
  const device = typeof parsed.values.device === 'string' ? parsed.values.device : undefined;
  if (device !== undefined) await checkDeviceHere(device, launcher?.nproc ?? 1);
  const env = launcherEnv();
  const workers = Object.hasOwn(COMMANDS[command].options, 'nproc') ? workersText(launcher, env) : null;
  const input = { ...parsed, worldSize: launcher ? launcher.nnodes * launcher.nproc : env?.worldSize ?? 1 };
  const plan = await PLANS[command](input);
  const rows = [...plan.rows];
  if (plan.computes) rows.push(['compute', computeText(input.globals, device, launcher)]);
  if (workers) rows.push(['workers', workers]);
  rows.push(['would write', plan.writes?.length ? plan.writes.join('; ') : 'nothing']);
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  const lines = [`simclr ${command} --dry-run: the command line and the inputs it names are checked; the plan:`, ...rows.map(([label, text]) => `  ${label.padEnd(width)}${text}`)];
  if (plan.stages?.length) lines.push('  stages, in order:', ...plan.stages.map((s, i) => `    ${i + 1}. ${s}`));
  console.log(`${lines.join('\n')}\n${DRY_RUN_DONE}`);
  return 0;
}

/** Precision, layout and threads as the command would choose them, from the processor's flags (libtorch is not loaded). */
function computeText(g: Parsed<typeof GLOBAL_OPTIONS>, device: string | undefined, launcher: WorkerPlan | null): string {
  const perWorker = launcher !== null && launcher.nproc > 1;
  const threads = g.threads ?? (perWorker ? threadsPerWorker(launcher.nproc) : threadsFromEnvironment(availableParallelism()));
  // Without libtorch loaded, oneDNN is taken to be there (Debian's and pytorch.org's builds have it; simclr info says).
  const c = resolveCompute({ precision: g.precision, channelsLast: g.channelsLast, device: workerDevice(device) }, cpuFlags(), true);
  const where = c.device === 'cpu' ? '' : ` on ${c.device}`;
  return `${c.precision} (${c.why.precision}), ${c.channelsLast ? 'channels-last' : 'NCHW'}, ${counted(threads, 'thread')}${perWorker ? ' per worker' : ''}${where}`;
}

/** The worker this process is by a launcher's environment (WORLD_SIZE, RANK, ...), checked; null without one. */
function launcherEnv(): WorkerEnv | null {
  try {
    return workerEnv();
  } catch (e) {
    throw e instanceof WorkerEnvError ? new PlanError(e.message) : e;
  }
}

/** The workers the launcher flags ask for, or those a launcher's environment names, or one process. */
function workersText(launcher: WorkerPlan | null, env: WorkerEnv | null): string {
  if (launcher) return launcherText(launcher);
  if (!env) return 'one process (--nproc N for data-parallel workers)';
  return `rank ${env.rank} of ${env.worldSize}, local rank ${env.localRank}, as the launcher's WORLD_SIZE and RANK say; rendezvous ${env.masterAddr}:${env.masterPort}, joined when the command runs`;
}

function launcherText(p: WorkerPlan): string {
  // An address is checked as the launcher checks it; a name is resolved only when the command runs.
  const literal = p.masterAddr !== undefined && isIP(p.masterAddr) !== 0;
  const problem = literal ? publicRendezvousProblem(p.masterAddr!, p.masterAddr!, p.allowPublicRendezvous ?? false) : null;
  if (problem) throw new UsageError(problem);
  const first = p.nodeRank * p.nproc;
  const ranks = `ranks ${first}-${first + p.nproc - 1} of ${p.nnodes * p.nproc}${p.nnodes > 1 ? `, node ${p.nodeRank} of ${p.nnodes}` : ''}`;
  const rendezvous = p.masterAddr
    ? `${p.masterAddr}:${p.masterPort}${literal ? '' : ' (the name is resolved when the command runs)'}`
    : `a file store on this machine, tensors over 127.0.0.1${p.masterPort ? ` (MASTER_PORT ${p.masterPort})` : ''}`;
  const restarts = p.maxRestarts ? `, up to ${counted(p.maxRestarts, 'restart')}` : '';
  return `${counted(p.nproc, 'worker')} on this machine (${ranks}), rendezvous ${rendezvous}${p.iface ? `, Gloo on ${p.iface}` : ''}${restarts}; none started`;
}
