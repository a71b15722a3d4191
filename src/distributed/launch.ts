// Local workers, as torchrun starts them: N copies of the same command, each with the
// worker variables (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK), threads
// divided between them. Rank 0's output is the command's; the others' errors come
// through prefixed with their rank. A worker that dies stops the rest, and the launcher
// exits non-zero naming it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { envForWorker, workerEnv, type WorkerEnv } from './env';
import { ProcessGroup } from './group';

export interface LaunchOptions {
  /** workers to start on this machine */
  nproc: number;
  /** the script every worker runs, and its arguments */
  script: string;
  args: string[];
  /** threads of each worker (default: the machine's, or OMP_NUM_THREADS, divided by nproc) */
  threadsPerWorker?: number;
  masterAddr?: string;
  /** default: MASTER_PORT, else a free port */
  masterPort?: number;
  /** After one worker fails, how long the others get to stop by themselves before SIGTERM (ms). Default 20,000. */
  graceMs?: number;
}

/** A free TCP port on 127.0.0.1 (chosen by the OS, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A port given for the rendezvous is taken. */
export class PortInUseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PortInUseError';
  }
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** Threads each of n local workers gets by default: this machine's threads divided between them, at least 1. */
export function threadsPerWorker(nproc: number, env: NodeJS.ProcessEnv = process.env): number {
  const omp = Number(env.OMP_NUM_THREADS);
  const total = Number.isInteger(omp) && omp >= 1 ? omp : availableParallelism();
  return Math.max(1, Math.floor(total / nproc));
}

const describeExit = (code: number | null, signal: NodeJS.Signals | null): string => (signal ? `was killed by ${signal}` : `exited with status ${code}`);

/** Starts the workers and waits for them; resolves to the exit status for the launcher. */
export async function launchLocal(o: LaunchOptions): Promise<number> {
  const addr = o.masterAddr ?? '127.0.0.1';
  const chosen = o.masterPort ?? (process.env.MASTER_PORT ? Number(process.env.MASTER_PORT) : undefined);
  if (chosen !== undefined && !(await portFree(addr, chosen))) {
    throw new PortInUseError(`the rendezvous port ${chosen} is in use on ${addr}: choose another with --master-port (or MASTER_PORT), or leave both out for a free one`);
  }
  const port = chosen ?? (await freePort());
  const threads = o.threadsPerWorker ?? threadsPerWorker(o.nproc);
  const children: ChildProcess[] = [];
  const exits: ({ code: number | null; signal: NodeJS.Signals | null } | null)[] = Array.from({ length: o.nproc }, () => null);
  let firstFailure: { rank: number; text: string; code: number } | null = null;
  let stopping = false;
  const timers: NodeJS.Timeout[] = [];

  const signalAll = (signal: NodeJS.Signals): void => {
    for (const [rank, child] of children.entries()) if (!exits[rank]) child.kill(signal);
  };
  // The workers are in their own process group: a Ctrl-C reaches them once, from here.
  const forward = (signal: NodeJS.Signals) => () => {
    stopping = true;
    signalAll(signal);
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);

  const done = new Promise<void>((resolve) => {
    let left = o.nproc;
    for (let rank = 0; rank < o.nproc; rank++) {
      const w: WorkerEnv = { masterAddr: addr, masterPort: port, worldSize: o.nproc, rank, localRank: rank, localWorldSize: o.nproc };
      const env = { ...process.env, ...envForWorker(w), OMP_NUM_THREADS: String(threads), SIMCLR_LAUNCHER_PID: String(process.pid) };
      const args = o.args.includes('--threads') ? o.args : [...o.args, '--threads', String(threads)];
      const child = spawn(process.execPath, [o.script, ...args], { env, detached: true, stdio: rank === 0 ? 'inherit' : ['ignore', 'ignore', 'pipe'] });
      if (rank !== 0 && child.stderr) {
        createInterface({ input: child.stderr }).on('line', (line) => process.stderr.write(`[rank ${rank}] ${line}\n`));
      }
      child.on('exit', (code, signal) => {
        exits[rank] = { code, signal };
        if ((code !== 0 || signal) && !firstFailure && !stopping) {
          firstFailure = { rank, text: `worker rank ${rank} (pid ${child.pid}) ${describeExit(code, signal)}`, code: code && code !== 0 ? code : 1 };
          if (exits.some((e) => !e)) {
            process.stderr.write(`simclr: ${firstFailure.text}; stopping the other workers\n`);
            // The others find the broken connection at their next collective; if one is
            // stuck elsewhere, SIGTERM and then SIGKILL end it.
            const grace = o.graceMs ?? 20_000;
            timers.push(setTimeout(() => signalAll('SIGTERM'), grace).unref());
            timers.push(setTimeout(() => signalAll('SIGKILL'), grace + 10_000).unref());
          }
        }
        if (--left === 0) resolve();
      });
      children.push(child);
    }
    process.stderr.write(`simclr: ${o.nproc} workers on this machine (pids ${children.map((c) => c.pid).join(', ')} for ranks 0-${o.nproc - 1}), rendezvous ${addr}:${port}, ${threads} thread${threads > 1 ? 's' : ''} each\n`);
  });
  await done;
  for (const timer of timers) clearTimeout(timer);
  process.off('SIGINT', onInt);
  process.off('SIGTERM', onTerm);
  const failure = firstFailure as { rank: number; text: string; code: number } | null;
  if (failure) {
    process.stderr.write(`simclr: stopped: ${failure.text}\n`);
    return failure.code;
  }
  // All exited by themselves: rank 0's status (130/143 after a stop), else the first non-zero.
  const codes = exits.map((e) => (e!.signal ? 1 : (e!.code ?? 1)));
  return codes[0] !== 0 ? codes[0]! : (codes.find((c) => c !== 0) ?? 0);
}

/**
 * In a worker: joins the group the environment names (null without WORLD_SIZE). A worker
 * that a launcher started stops (SIGTERM: a checkpoint, then exit) if the launcher goes away.
 */
export function joinWorkers(env: NodeJS.ProcessEnv = process.env): ProcessGroup | null {
  const w = workerEnv(env);
  if (!w) return null;
  const launcher = Number(env.SIMCLR_LAUNCHER_PID);
  if (launcher > 0) {
    setInterval(() => {
      if (process.ppid !== launcher) process.kill(process.pid, 'SIGTERM');
    }, 2000).unref();
  }
  const seconds = Number(env.SIMCLR_DIST_TIMEOUT ?? 600);
  return ProcessGroup.init({ ...w, timeoutMs: (Number.isFinite(seconds) && seconds > 0 ? seconds : 600) * 1000 });
}

/** The end of a worker's command: waits for the others (rank 0 keeps the rendezvous until all are done), then leaves. */
export function leaveWorkers(group: ProcessGroup | null, ok: boolean): void {
  if (!group) return;
  try {
    if (ok) group.barrier();
  } finally {
    group.destroy();
  }
}
