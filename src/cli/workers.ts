// The launcher's options (--nproc, --nnodes, --node-rank, --master, --max-restarts), checked
// against each other and against a launcher's environment before anything starts, and the
// arguments a restart runs with.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError, type OptionSpec } from './options';
import { workerOptions } from './specs';

export interface WorkerFlags {
  nproc?: number;
  nnodes?: number;
  nodeRank?: number;
  master?: string;
  masterPort?: number;
  maxRestarts?: number;
  iface?: string;
  allowPublicRendezvous?: boolean;
}

/** What the launcher does: workers on this node, its place among the nodes, the rendezvous, restarts. */
export interface WorkerPlan {
  nproc: number;
  nnodes: number;
  nodeRank: number;
  masterAddr?: string;
  masterPort?: number;
  maxRestarts: number;
  /** the interface the workers' Gloo devices listen on */
  iface?: string;
  /** a master address routable on the internet is accepted */
  allowPublicRendezvous?: boolean;
}

/** HOST:PORT, or [IPv6]:PORT, as --master takes it. */
export function parseMaster(text: string): { host: string; port: number } {
  const m = /^\[([0-9A-Fa-f:.%\w-]+)\]:(\d{1,5})$/.exec(text) ?? /^([^\s:[\]]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) {
    throw new UsageError(`--master must be HOST:PORT, the address of node 0 and a free port there (e.g. 10.0.0.1:29500, node0.cluster:29500 or [fd00::1]:29500), got '${text}'`);
  }
  return { host: m[1]!, port };
}

const ENV_NAMES = ['MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK'] as const;

/**
 * The launcher's plan, or null when this process is the worker itself (no launcher option
 * given). Throws a UsageError naming the flags that do not fit together.
 */
export function workerPlan(f: WorkerFlags, env: NodeJS.ProcessEnv = process.env): WorkerPlan | null {
  const nproc = f.nproc ?? 1;
  const nnodes = f.nnodes ?? 1;
  const nodeRank = f.nodeRank ?? 0;
  const maxRestarts = f.maxRestarts ?? 0;
  const flags = [
    ...(nproc > 1 ? [`--nproc ${nproc}`] : []),
    ...(nnodes > 1 ? [`--nnodes ${nnodes}`] : []),
    ...(f.master !== undefined ? [`--master ${f.master}`] : []),
    ...(maxRestarts > 0 ? [`--max-restarts ${maxRestarts}`] : []),
  ];
  const fromEnv = ENV_NAMES.filter((n) => env[n] !== undefined && env[n] !== '');
  if (f.master !== undefined && fromEnv.length) {
    throw new UsageError(`--master ${f.master} sets the rendezvous, but so does the environment (${fromEnv.map((n) => `${n}=${env[n]}`).join(', ')}), as torchrun or srun set it: give one or the other`);
  }
  if (flags.length && env.WORLD_SIZE) {
    throw new UsageError(`${flags.join(', ')} start${flags.length > 1 ? '' : 's'} workers, but WORLD_SIZE=${env.WORLD_SIZE} says a launcher already started this one; leave out ${flags.map((x) => x.split(' ')[0]).join(', ')}`);
  }
  if (f.master !== undefined && f.masterPort !== undefined) throw new UsageError(`--master ${f.master} holds the port already; leave out --master-port ${f.masterPort}`);
  if (nodeRank >= nnodes) throw new UsageError(`--node-rank ${nodeRank} is out of range: with --nnodes ${nnodes} it must be ${nnodes > 1 ? `from 0 to ${nnodes - 1}` : '0 (--nnodes N for several nodes)'}`);
  if (nnodes > 1 && f.master === undefined) {
    throw new UsageError(`--nnodes ${nnodes} needs --master HOST:PORT: the address of node 0 (--node-rank 0 hosts the rendezvous) and a free port there, the same on every node`);
  }
  if (f.iface !== undefined && nnodes === 1) throw new UsageError(`--iface ${f.iface} chooses the network interface between nodes: it goes with --nnodes`);
  if (f.allowPublicRendezvous && f.master === undefined) throw new UsageError('--allow-public-rendezvous accepts a public --master address: it goes with --master');
  if (!flags.length) return null;
  const master = f.master !== undefined ? parseMaster(f.master) : undefined;
  const port = master?.port ?? f.masterPort;
  // Restart k meets at PORT+k: workers of the failed attempt on another node can then never join the new one.
  if (port !== undefined && maxRestarts > 0 && port + maxRestarts > 65535) {
    throw new UsageError(`--max-restarts ${maxRestarts} with the rendezvous port ${port}: restart k meets at port ${port}+k, past 65535; choose a lower port`);
  }
  return { nproc, nnodes, nodeRank, maxRestarts, ...(master ? { masterAddr: master.host } : {}), ...(port !== undefined ? { masterPort: port } : {}), ...(f.iface ? { iface: f.iface } : {}), ...(f.allowPublicRendezvous ? { allowPublicRendezvous: true } : {}) };
}

/** Where a restarted command starts: its arguments and a few words for the log. */
export interface RestartFrom {
  args: string[];
  from: string;
}

/**
 * The arguments of a restarted `pretrain`: with --resume once the run folder holds a
 * config.json (resume continues from the last checkpoint, or from step 0 under the recorded
 * settings when none was written yet), else the command as first given (a fresh start).
 */
export function pretrainRestart(args: string[], out: string): RestartFrom {
  if (!out || !existsSync(join(out, 'config.json'))) return { args, from: 'from the start (the run folder was not made yet)' };
  const withResume = args.includes('--resume') ? args : [...args, '--resume'];
  let from = 'with --resume, from step 0 (no checkpoint was written yet)';
  try {
    const meta = JSON.parse(readFileSync(join(out, 'pretrain.json'), 'utf8')) as { epoch?: number; step?: number; batch?: number };
    if (typeof meta.step === 'number') from = `with --resume, from the checkpoint after epoch ${meta.epoch ?? '?'}${meta.batch ? `, batch ${meta.batch}` : ''} (step ${meta.step})`;
  } catch {
    // No checkpoint yet (or one being replaced): the worker reads what is there when it starts.
  }
  return { args: withResume.filter((a) => a !== '--no-resume'), from };
}

/** The stage checkpoints in a run folder (NAME.json beside NAME.safetensors) and when each was last written. */
export function checkpointStamps(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  if (!dir || !existsSync(dir)) return out;
  for (const f of readdirSync(dir)) {
    const name = f.endsWith('.safetensors') ? f.slice(0, -'.safetensors'.length) : null;
    if (name && existsSync(join(dir, `${name}.json`))) out.set(name, statSync(join(dir, `${name}.json`)).mtimeMs);
  }
  return out;
}

/**
 * The arguments of a restarted classifier stage: with --resume when the failed attempt wrote
 * a checkpoint (a stage checkpoint in the run folder that is new or rewritten since the
 * launch), else as first given. A fresh run over a stage an earlier command trained must not
 * resume that older checkpoint.
 */
export function stageRestart(args: string[], run: string, atLaunch: ReadonlyMap<string, number>): RestartFrom {
  if (args.includes('--resume')) return { args, from: "with --resume, from the stage's last checkpoint" };
  const now = checkpointStamps(run);
  const written = [...now].some(([name, stamp]) => atLaunch.get(name) !== stamp);
  if (!written) return { args, from: 'from the start (no checkpoint was written yet)' };
  return { args: [...args.filter((a) => a !== '--no-resume'), '--resume'], from: "with --resume, from the stage's last checkpoint" };
}

/**
 * How a command restarts after a worker failed, decided at the launch: pretraining and the
 * pipeline continue their run folder (--resume once it exists); a classifier stage continues
 * the checkpoint its failed attempt wrote; eval and the demo start again.
 */
export function restarter(command: string, args: string[], where: { out?: string; run?: string }): () => RestartFrom {
  if (command === 'pretrain' || command === 'pipeline') return () => pretrainRestart(args, where.out ?? '');
  if (command === 'finetune' || command === 'supervised' || command === 'distill') {
    const atLaunch = checkpointStamps(where.run ?? '');
    return () => stageRestart(args, where.run ?? '', atLaunch);
  }
  return () => ({ args, from: 'with the same arguments' });
}

/**
 * The command line the workers get: without the launcher's own options (the table in
 * specs.ts), each with its value (--name V, --name=V) or, for a switch, alone (--name, --no-name).
 */
export function withoutWorkerOptions(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.startsWith('--') ? a.slice(2).split('=')[0]!.replace(/^no-/, '') : '';
    const o = (workerOptions as Record<string, OptionSpec>)[name];
    if (!o) out.push(a);
    else if (o.type !== 'boolean' && !a.includes('=') && !a.startsWith('--no-')) i++; // its value follows
  }
  return out;
}

