// Workers as torchrun starts them: on each node, N copies of the same command with the
// worker variables (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK), threads
// divided between them; node K's workers are global ranks K*N to K*N+N-1, and node 0's
// first worker hosts the rendezvous. Rank 0's output is the command's; the others' errors
// come through prefixed with their rank. A worker that fails stops the rest of this node,
// and the launcher either exits non-zero naming it or, with restarts left, starts them all
// again from the run's last checkpoint.
import { spawn, type ChildProcess } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { publicRendezvousProblem } from './rendezvous-address';
import { signalExitCode } from '../train/control';
import { createServer, type AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { envForWorker, workerEnv, WorkerEnvError, type WorkerEnv } from './env';
import { GLOO_ADDR_ENV, launcherGlooAddress, workerGlooAddress } from './gloo-address';
import { ProcessGroup } from './group';

export interface LaunchOptions {
  /** workers to start on this machine */
  nproc: number;
  /** the script every worker runs, and its arguments */
  script: string;
  args: string[];
  /** threads of each worker (default: the machine's, or OMP_NUM_THREADS, divided by nproc) */
  threadsPerWorker?: number;
  /** nodes taking part, each with nproc workers (default 1) */
  nnodes?: number;
  /** this node's place, 0 to nnodes-1 (default 0) */
  nodeRank?: number;
  /** the rendezvous host: node 0's address (default 127.0.0.1) */
  masterAddr?: string;
  /** default: MASTER_PORT, else a free port (one node only; several need a fixed port) */
  masterPort?: number;
  /** After one worker fails, how long the others get to stop by themselves before SIGTERM (ms). Default 20,000. */
  graceMs?: number;
  /** Times to start all local workers again after a failure (default 0). */
  maxRestarts?: number;
  /** The network interface the workers' Gloo devices listen on (default: the one that routes to the master). */
  iface?: string;
  /** Accept a master address routable on the internet (the user keeps the port to the nodes). */
  allowPublicRendezvous?: boolean;
  /** The arguments of restart k (1, 2, ...) and where it starts from, in words; default: the same arguments. */
  restart?: (attempt: number) => { args: string[]; from: string };
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

/** After a stop signal, how long a stopped (SIGSTOP) worker is left before SIGKILL ends it. */
const STOPPED_WORKER_GRACE_MS = 1300;

/** The launcher names one machine's rendezvous file to its workers here (c10d's FileStore). */
export const STORE_FILE_ENV = 'SIMCLR_RENDEZVOUS_FILE';

/** Whether a process is stopped (state T or t in /proc: SIGSTOP, Ctrl-Z, a debugger). */
export function isStoppedProcess(pid: number): boolean {
  try {
    // The state follows the command name, which is in parentheses and may hold spaces.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[Tt]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

/** The launcher's options do not fit (a master address that does not resolve, a bad node rank). */
export class LaunchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LaunchError';
  }
}

/** Whether `port` can be listened on: false when in use; the store listens on every interface, so an address that is not this machine's is checked on all of them. */
function portFree(host: string, port: number): Promise<boolean> {
  const tryListen = (h: string | undefined) =>
    new Promise<NodeJS.ErrnoException | null>((resolve) => {
      const server = createServer();
      server.once('error', (e: NodeJS.ErrnoException) => resolve(e));
      server.listen(port, h, () => server.close(() => resolve(null)));
    });
  return tryListen(host).then(async (e) => {
    if (!e) return true;
    if (e.code === 'EADDRINUSE') return false;
    return (await tryListen(undefined))?.code !== 'EADDRINUSE';
  });
}

/** Threads each of n local workers gets by default: this machine's threads divided between them, at least 1. */
export function threadsPerWorker(nproc: number, env: NodeJS.ProcessEnv = process.env): number {
  const omp = Number(env.OMP_NUM_THREADS);
  const total = Number.isInteger(omp) && omp >= 1 ? omp : availableParallelism();
  return Math.max(1, Math.floor(total / nproc));
}

const describeExit = (code: number | null, signal: NodeJS.Signals | null): string => (signal ? `was killed by ${signal}` : `exited with status ${code}`);

// A worker that exits 130 or 143 was stopped (Ctrl-C, SIGTERM: its own, or another worker's,
// agreed on at a step) and saved a checkpoint; one killed by SIGINT or SIGTERM was stopped too.
// Neither is a failure, so neither is restarted.
const isStop = (code: number | null, signal: NodeJS.Signals | null): boolean => (signal ? signal === 'SIGINT' || signal === 'SIGTERM' : code === 130 || code === 143);

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}
interface Failure {
  rank: number;
  text: string;
  code: number;
}
interface AttemptResult {
  exits: Exit[];
  failure: Failure | null;
}

interface Attempt {
  args: string[];
  port: number;
  /** one machine: the attempt's rendezvous file (a new one each attempt), in a private folder */
  storeFile?: string;
  /** the address the workers' Gloo devices listen on */
  glooAddr: string;
  threads: number;
  /** Set by the launcher's own signal handler: the workers were asked to stop. */
  stopping: () => boolean;
  /** The children of this attempt, for the signal handler. */
  children: ChildProcess[];
  exits: (Exit | null)[];
}

/** Starts this node's workers once and waits for all of them. */
function runAttempt(o: LaunchOptions, a: Attempt): Promise<AttemptResult> {
  const nnodes = o.nnodes ?? 1;
  const nodeRank = o.nodeRank ?? 0;
  const addr = o.masterAddr ?? '127.0.0.1';
  const first = nodeRank * o.nproc;
  const timers: NodeJS.Timeout[] = [];
  let failure: Failure | null = null;
  const signalAll = (signal: NodeJS.Signals): void => {
    for (const [i, child] of a.children.entries()) if (!a.exits[i]) child.kill(signal);
  };
  return new Promise<AttemptResult>((resolve) => {
    let left = o.nproc;
    for (let local = 0; local < o.nproc; local++) {
      const rank = first + local;
      const w: WorkerEnv = { masterAddr: addr, masterPort: a.port, worldSize: nnodes * o.nproc, rank, localRank: local, localWorldSize: o.nproc };
      const env = { ...process.env, ...envForWorker(w), ...(a.storeFile ? { [STORE_FILE_ENV]: a.storeFile } : {}), OMP_NUM_THREADS: String(a.threads), SIMCLR_LAUNCHER_PID: String(process.pid), [GLOO_ADDR_ENV]: a.glooAddr, ...(o.iface ? { GLOO_SOCKET_IFNAME: o.iface } : {}) };
      const args = a.args.includes('--threads') ? a.args : [...a.args, '--threads', String(a.threads)];
      // The workers are in their own process group: a Ctrl-C reaches them once, from here.
      const child = spawn(process.execPath, [o.script, ...args], { env, detached: true, stdio: rank === 0 ? 'inherit' : ['ignore', 'ignore', 'pipe'] });
      if (rank !== 0 && child.stderr) {
        createInterface({ input: child.stderr }).on('line', (line) => process.stderr.write(`[rank ${rank}] ${line}\n`));
      }
      child.on('exit', (code, signal) => {
        a.exits[local] = { code, signal };
        if ((code !== 0 || signal) && !isStop(code, signal) && !failure && !a.stopping()) {
          failure = { rank, text: `worker rank ${rank} (pid ${child.pid}) ${describeExit(code, signal)}`, code: code && code !== 0 ? code : 1 };
          if (a.exits.some((e) => !e)) {
            process.stderr.write(`simclr: ${failure.text}; stopping the other workers${nnodes > 1 ? ' on this node' : ''}\n`);
            // The others find the broken connection at their next collective; if one is
            // stuck elsewhere, SIGTERM and then SIGKILL end it.
            const grace = o.graceMs ?? 20_000;
            timers.push(setTimeout(() => signalAll('SIGTERM'), grace).unref());
            timers.push(setTimeout(() => signalAll('SIGKILL'), grace + 10_000).unref());
          }
        }
        if (--left === 0) {
          for (const timer of timers) clearTimeout(timer);
          // A usage error (exit 2) is the cause wherever it was: a worker that only lost its
          // connection to that one (rank 0 leaves the group as it stops) may have exited first.
          const usage = a.exits.findIndex((e) => e!.code === 2);
          const cause = failure && usage >= 0 ? { rank: first + usage, text: `worker rank ${first + usage} (pid ${a.children[usage]!.pid}) exited with status 2`, code: 2 } : failure;
          resolve({ exits: a.exits as Exit[], failure: cause });
        }
      });
      a.children.push(child);
    }
    const pids = a.children.map((c) => c.pid).join(', ');
    const ranks = o.nproc > 1 ? `ranks ${first}-${first + o.nproc - 1}` : `rank ${first}`;
    const where = nnodes > 1 ? `node ${nodeRank} of ${nnodes}: ` : '';
    process.stderr.write(
      `simclr: ${where}${o.nproc} worker${o.nproc > 1 ? 's' : ''} on this machine (pid${o.nproc > 1 ? 's' : ''} ${pids} for ${ranks}${nnodes > 1 ? ` of ${nnodes * o.nproc}` : ''}), rendezvous ${a.storeFile ? 'in a private file' : `${addr}:${a.port}`}${nnodes > 1 ? `, Gloo on ${a.glooAddr}` : ''}, ${a.threads} thread${a.threads > 1 ? 's' : ''} each\n`,
    );
  });
}

/** The launcher's exit status when no worker failed: rank 0's (130/143 after a stop), else the first non-zero. */
function exitStatus(exits: Exit[]): number {
  const codes = exits.map((e) => (e.signal ? (e.signal === 'SIGINT' ? 130 : e.signal === 'SIGTERM' ? 143 : 1) : (e.code ?? 1)));
  return codes[0] !== 0 ? codes[0]! : (codes.find((c) => c !== 0) ?? 0);
}

/** The rendezvous port of attempt k: a fixed port + k (every node agrees without talking), else a free one. */
async function attemptPort(o: LaunchOptions, attempt: number): Promise<number> {
  const addr = o.masterAddr ?? '127.0.0.1';
  const fixed = o.masterPort ?? (process.env.MASTER_PORT ? Number(process.env.MASTER_PORT) : undefined);
  if (fixed === undefined) return freePort();
  const port = fixed + attempt;
  // Node 0's first worker listens there; the other nodes only connect.
  if ((o.nodeRank ?? 0) === 0 && !(await portFree(addr, port))) {
    const which = attempt ? `port ${port} (the rendezvous port ${fixed} + restart ${attempt})` : `port ${port}`;
    throw new PortInUseError(`the rendezvous ${which} is in use on ${addr}: choose another with ${o.nnodes && o.nnodes > 1 ? '--master HOST:PORT' : '--master-port (or MASTER_PORT)'}${o.nnodes && o.nnodes > 1 ? '' : ', or leave both out for a free one'}`);
  }
  return port;
}

/**
 * Starts this node's workers and waits for them, starting them again after a failure while
 * restarts are left; resolves to the exit status for the launcher.
 */
export async function launchLocal(o: LaunchOptions): Promise<number> {
  const nnodes = o.nnodes ?? 1;
  const nodeRank = o.nodeRank ?? 0;
  const maxRestarts = o.maxRestarts ?? 0;
  if (!Number.isInteger(nnodes) || nnodes < 1 || !Number.isInteger(nodeRank) || nodeRank < 0 || nodeRank >= nnodes) {
    throw new LaunchError(`the node rank (${nodeRank}) must be from 0 to nnodes - 1 = ${nnodes - 1}`);
  }
  if (nnodes > 1 && o.masterPort === undefined) throw new LaunchError(`${nnodes} nodes need a fixed rendezvous (--master HOST:PORT)`);
  if (o.masterAddr) {
    // Fails at once for a name no node could reach, rather than after the rendezvous timeout.
    const found = await lookup(o.masterAddr).catch((e: NodeJS.ErrnoException) => {
      throw new LaunchError(`the master address '${o.masterAddr}' does not resolve on this machine (${e.code ?? e.message}): give node 0's address or a name every node resolves`);
    });
    const problem = publicRendezvousProblem(o.masterAddr, found.address, o.allowPublicRendezvous ?? false);
    if (problem) throw new LaunchError(problem);
  }
  let glooAddr: string;
  try {
    glooAddr = await launcherGlooAddress(o.masterAddr ?? '127.0.0.1', nnodes, o.iface);
  } catch (e) {
    throw new LaunchError((e as Error).message);
  }
  const threads = o.threadsPerWorker ?? threadsPerWorker(o.nproc);
  let stopping: NodeJS.Signals | null = null;
  let current: Attempt | null = null;
  let watchStopped: NodeJS.Timeout | null = null;
  const alive = (): ChildProcess[] => (current ? current.children.filter((_, i) => !current!.exits[i]) : []);
  const forward = (signal: NodeJS.Signals) => () => {
    // A second Ctrl-C or SIGTERM: end the workers at once.
    const again = stopping !== null;
    stopping = signal;
    for (const child of alive()) child.kill(again ? 'SIGKILL' : signal);
    // A worker stopped by SIGSTOP (or a debugger) can never act on the signal: end it once
    // the others, which give up waiting for it a second after the signal, have said so.
    const asked = Date.now();
    watchStopped ??= setInterval(() => {
      if (Date.now() - asked < STOPPED_WORKER_GRACE_MS) return;
      for (const child of alive()) if (child.pid && isStoppedProcess(child.pid)) child.kill('SIGKILL');
    }, 100).unref();
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  // One machine meets in a file only this user can read (mkdtemp makes the folder 0700), not
  // on a port every interface exposes; a fresh file each attempt, as a killed worker leaves
  // the old one's count of workers wrong.
  const storeDir = nnodes === 1 ? mkdtempSync(join(tmpdir(), 'simclr-rendezvous-')) : null;
  try {
    let args = o.args;
    for (let attempt = 0; ; attempt++) {
      const port = await attemptPort(o, attempt);
      if (stopping) return signalExitCode(stopping);
      const storeFile = storeDir ? join(storeDir, `attempt-${attempt}`) : undefined;
      current = { args, port, ...(storeFile ? { storeFile } : {}), glooAddr, threads, stopping: () => stopping !== null, children: [], exits: Array.from({ length: o.nproc }, () => null) };
      const { exits, failure } = await runAttempt(o, current);
      // Asked to stop: the run was stopped, whatever a worker that lost a stuck peer said.
      if (!failure) return stopping ? signalExitCode(stopping) : exitStatus(exits);
      if (stopping) {
        process.stderr.write(`simclr: stopped by ${stopping} after ${failure.text} (not restarted)\n`);
        return failure.code;
      }
      // Exit status 2 is a usage or plan error (a wrong path, a setting): the same on every attempt.
      if (failure.code === 2 && maxRestarts > attempt) {
        process.stderr.write(`simclr: stopped: ${failure.text}, a usage error that a restart would repeat (not restarted)\n`);
        return failure.code;
      }
      if (attempt >= maxRestarts) {
        process.stderr.write(`simclr: stopped: ${failure.text}${maxRestarts ? ` (no restarts left: --max-restarts ${maxRestarts} used)` : ''}\n`);
        return failure.code;
      }
      const next = o.restart ? o.restart(attempt + 1) : { args: o.args, from: 'with the same arguments' };
      args = next.args;
      process.stderr.write(
        `simclr: ${failure.text}; restart ${attempt + 1} of ${maxRestarts}: starting the ${o.nproc > 1 ? `${o.nproc} workers` : 'worker'} on this machine again ${next.from}` +
          `${o.masterPort !== undefined || process.env.MASTER_PORT ? `, rendezvous port ${(o.masterPort ?? Number(process.env.MASTER_PORT)) + attempt + 1}` : ''}\n`,
      );
    }
  } finally {
    if (storeDir) rmSync(storeDir, { recursive: true, force: true });
    if (watchStopped) clearInterval(watchStopped);
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
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
  let bindHost: string;
  try {
    bindHost = workerGlooAddress(env, w.masterAddr, w.worldSize);
  } catch (e) {
    throw new WorkerEnvError((e as Error).message);
  }
  const storeFile = env[STORE_FILE_ENV] || undefined;
  return ProcessGroup.init({ ...w, bindHost, ...(storeFile ? { storeFile } : {}), timeoutMs: (Number.isFinite(seconds) && seconds > 0 ? seconds : 600) * 1000 });
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
