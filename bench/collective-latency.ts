// The time of one small collective between two processes on this machine: an all-reduce of
// 64 floats over Gloo, ours through c10d (ProcessGroup.allReduce), ours on the direct channel
// (the blocking sums of synchronized batch norm and the step's figures: native/dist.cc
// directGather) and PyTorch's (bench/py/gloo_latency.py), in interleaved rounds. Synchronized batch norm makes 46 such collectives a pretraining step
// (bench/scale-results.md), so this bounds what 2 workers can scale to here.
// Two floors are measured in the same rounds, to say where the time goes: Gloo's own
// all-reduce called in the caller's thread, without c10d's work queue
// (bench/native/gloo_latency.cc, built here with g++ against Debian's libgloo), and one TCP
// round trip of the same 256 bytes (bench/py/tcp_roundtrip.py).
//
//   npm run bench:collective-latency -- [--rounds 3]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as t from '../src';
import { freePort } from '../src/distributed/launch';
import { median, spread } from './peer';
import { writeBenchResults } from './results-file';

const { values: opts } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, rank: { type: 'string' }, port: { type: 'string' }, direct: { type: 'boolean', default: false } } });

/** One rank of ours: prints the mean microseconds of one all-reduce on rank 0. */
function rankMain(rank: number, port: number, direct: boolean): void {
  t.setNumThreads(1);
  const g = t.distributed.ProcessGroup.init({ masterAddr: '127.0.0.1', masterPort: port, worldSize: 2, rank, timeoutMs: 60_000 });
  // Zeros: sums of ones would double each time and overflow to inf.
  const x = t.zeros([64]);
  const once = direct ? () => t.tidy(() => void t.noGrad(() => g.sumWithGrad(x))) : () => void g.allReduce(x);
  for (let i = 0; i < 50; i++) once();
  const n = 1000;
  const start = performance.now();
  for (let i = 0; i < n; i++) once();
  if (rank === 0) console.log(((performance.now() - start) / n * 1000).toFixed(1));
  g.barrier();
  g.destroy();
  x.dispose();
}

const PAIR_LIMIT_MS = 120_000;

/** Kills whatever of these children is still running. */
function killAll(children: ChildProcess[]): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** A child's exit as a promise: its stdout on status 0, else an error naming it. */
function finished(child: ChildProcess, name: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (e) => reject(new Error(`${name} could not start: ${e.message}`)));
    child.on('exit', (code, signal) => (code === 0 ? resolve(out) : reject(new Error(`${name} exited with ${signal ?? code}`))));
  });
}

/** Runs `body` over these children with a limit: past PAIR_LIMIT_MS, and whenever `body`
 * ends, every child still running is killed, so a failed one never leaves another waiting. */
async function bounded<T>(children: ChildProcess[], body: () => Promise<T>): Promise<T> {
  const timer = setTimeout(() => killAll(children), PAIR_LIMIT_MS);
  try {
    return await body();
  } catch (e) {
    throw new Error(`${(e as Error).message} (each measurement has ${PAIR_LIMIT_MS / 1000} s)`);
  } finally {
    clearTimeout(timer);
    killAll(children);
  }
}

/** Runs both ranks side by side; rank 0's output is the figure. */
function runPair(command: string, args: (rank: number, port: number) => string[], port: number): Promise<number> {
  const children = [0, 1].map((rank) => spawn(command, args(rank, port), { stdio: ['ignore', 'pipe', 'inherit'] }));
  return bounded(children, async () => {
    const [out] = await Promise.all(children.map((child, rank) => finished(child, `${command} rank ${rank}`)));
    return Number(out!.trim());
  });
}

const repo = join(__dirname, '..', '..');

/** Builds the Gloo probe (again when its source is newer) and returns its path, or null with
 * the reason printed when it cannot be built (it needs g++ and Gloo's library, libgloo-dev). */
function buildGlooProbe(): string | null {
  const source = join(repo, 'bench', 'native', 'gloo_latency.cc');
  const binary = join(repo, 'build', 'bench', 'gloo_latency');
  const stale = (() => {
    try {
      return statSync(binary).mtimeMs < statSync(source).mtimeMs;
    } catch {
      return true;
    }
  })();
  if (!stale) return binary;
  mkdirSync(join(repo, 'build', 'bench'), { recursive: true });
  // Linked under another name and renamed, so an interrupted build never looks current.
  const partial = `${binary}.partial`;
  try {
    execFileSync('g++', ['-O2', '-std=c++17', source, '-o', partial, '-lgloo', '-lpthread'], { stdio: 'inherit' });
  } catch (e) {
    console.log(`gloo_direct_allreduce_latency_us: not measured; building ${source} failed (${(e as Error).message.split('\n')[0]}). It needs g++ and Gloo's library (Debian/Ubuntu: apt-get install g++ libgloo-dev).`);
    rmSync(partial, { force: true });
    return null;
  }
  renameSync(partial, binary);
  return binary;
}

/** Gloo's all-reduce without c10d: both ranks rendezvous through a fresh file store. */
async function runGlooProbe(binary: string): Promise<number> {
  const store = mkdtempSync(join(tmpdir(), 'gloo-store-'));
  try {
    return await runPair(binary, (rank) => [String(rank), store], 0);
  } finally {
    rmSync(store, { recursive: true, force: true });
  }
}

/** One TCP round trip: the server says "ready" before the client connects. */
async function runTcpRoundTrip(port: number): Promise<number> {
  const script = join(repo, 'bench', 'py', 'tcp_roundtrip.py');
  const server = spawn('/usr/bin/python3', [script, 'server', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const children = [server];
  return bounded(children, async () => {
    await Promise.race([
      new Promise<void>((resolve) => server.stdout.once('data', () => resolve())),
      finished(server, 'tcp_roundtrip.py server').then(() => {
        throw new Error('tcp_roundtrip.py server stopped before it was ready');
      }),
    ]);
    const client = spawn('/usr/bin/python3', [script, 'client', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(client);
    return Number((await finished(client, 'tcp_roundtrip.py client')).trim());
  });
}

async function main(): Promise<void> {
  if (opts.rank !== undefined) return rankMain(Number(opts.rank), Number(opts.port), opts.direct);
  const ours: number[] = [];
  const oursDirect: number[] = [];
  const torch: number[] = [];
  const glooOnly: number[] = [];
  const tcp: number[] = [];
  const script = join(repo, 'bench', 'py', 'gloo_latency.py');
  const probe = buildGlooProbe();
  for (let round = 0; round < Number(opts.rounds); round++) {
    ours.push(await runPair(process.execPath, (rank, port) => [__filename, '--rank', String(rank), '--port', String(port)], await freePort()));
    oursDirect.push(await runPair(process.execPath, (rank, port) => [__filename, '--rank', String(rank), '--port', String(port), '--direct'], await freePort()));
    torch.push(await runPair('/usr/bin/python3', (rank, port) => [script, String(rank), String(port)], await freePort()));
    if (probe) glooOnly.push(await runGlooProbe(probe));
    tcp.push(await runTcpRoundTrip(await freePort()));
    const direct = probe ? `, Gloo without c10d ${glooOnly.at(-1)} us` : '';
    console.log(`round ${round + 1}: ours ${ours.at(-1)} us, ours direct ${oursDirect.at(-1)} us, PyTorch ${torch.at(-1)} us${direct}, TCP round trip ${tcp.at(-1)} us`);
  }
  console.log(`allreduce_latency_us=${median(ours).toFixed(0)}  (64 floats, 2 processes over loopback, Gloo; spread ${spread(ours)})`);
  console.log(`torch_allreduce_latency_us=${median(torch).toFixed(0)}  (torch.distributed.all_reduce, the same; spread ${spread(torch)})`);
  console.log(`allreduce_latency_ratio=${(median(ours) / median(torch)).toFixed(3)}  (ours / PyTorch)`);
  console.log(`direct_sum_latency_us=${median(oursDirect).toFixed(0)}  (the same sum on the direct channel, in the calling thread; spread ${spread(oursDirect)})`);
  console.log(`direct_sum_speedup_vs_torch=${(median(torch) / median(oursDirect)).toFixed(1)}  (PyTorch's all_reduce time / the direct sum's)`);
  const figures: Record<string, number> = {
    allreduce_latency_us: Number(median(ours).toFixed(0)),
    direct_sum_latency_us: Number(median(oursDirect).toFixed(0)),
    torch_allreduce_latency_us: Number(median(torch).toFixed(0)),
    direct_sum_speedup_vs_torch: Number((median(torch) / median(oursDirect)).toFixed(1)),
    tcp_roundtrip_us: Number(median(tcp).toFixed(0)),
  };
  if (probe) figures.gloo_direct_allreduce_latency_us = Number(median(glooOnly).toFixed(0));
  if (probe) console.log(`gloo_direct_allreduce_latency_us=${median(glooOnly).toFixed(0)}  (gloo::allreduce in the caller's thread, no c10d; spread ${spread(glooOnly)})`);
  console.log(`tcp_roundtrip_us=${median(tcp).toFixed(0)}  (256 bytes there and back over loopback; spread ${spread(tcp)})`);
  console.log(`wrote ${writeBenchResults('collective-latency', figures, { rounds: Number(opts.rounds), values: 64 })}`);
}

void main();
