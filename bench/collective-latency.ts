// The time of one small collective between two processes on this machine: an all-reduce of
// 64 floats over Gloo, ours (ProcessGroup) and PyTorch's (bench/py/gloo_latency.py), in
// interleaved rounds. Synchronized batch norm makes 46 such collectives a pretraining step
// (bench/scale-results.md), so this bounds what 2 workers can scale to here.
//
//   npm run bench:collective-latency -- [--rounds 3]
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as t from '../src';
import { freePort } from '../src/distributed/launch';
import { median, spread } from './peer';

const { values: opts } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, rank: { type: 'string' }, port: { type: 'string' } } });

/** One rank of ours: prints the mean microseconds of one all-reduce on rank 0. */
function rankMain(rank: number, port: number): void {
  t.setNumThreads(1);
  const g = t.distributed.ProcessGroup.init({ masterAddr: '127.0.0.1', masterPort: port, worldSize: 2, rank, timeoutMs: 60_000 });
  // Zeros: sums of ones would double each time and overflow to inf.
  const x = t.zeros([64]);
  for (let i = 0; i < 50; i++) g.allReduce(x);
  const n = 1000;
  const start = performance.now();
  for (let i = 0; i < n; i++) g.allReduce(x);
  if (rank === 0) console.log(((performance.now() - start) / n * 1000).toFixed(1));
  g.barrier();
  g.destroy();
  x.dispose();
}

function runPair(command: string, args: (rank: number, port: number) => string[], port: number): Promise<number> {
  const outs = [0, 1].map(
    (rank) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(command, args(rank, port), { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} rank ${rank} exited with ${code}`))));
      }),
  );
  return Promise.all(outs).then(([out]) => Number(out!.trim()));
}

async function main(): Promise<void> {
  if (opts.rank !== undefined) return rankMain(Number(opts.rank), Number(opts.port));
  const ours: number[] = [];
  const torch: number[] = [];
  const script = join(__dirname, '..', '..', 'bench', 'py', 'gloo_latency.py');
  for (let round = 0; round < Number(opts.rounds); round++) {
    ours.push(await runPair(process.execPath, (rank, port) => [__filename, '--rank', String(rank), '--port', String(port)], await freePort()));
    torch.push(await runPair('/usr/bin/python3', (rank, port) => [script, String(rank), String(port)], await freePort()));
    console.log(`round ${round + 1}: ours ${ours.at(-1)} us, PyTorch ${torch.at(-1)} us`);
  }
  console.log(`allreduce_latency_us=${median(ours).toFixed(0)}  (64 floats, 2 processes over loopback, Gloo; spread ${spread(ours)})`);
  console.log(`torch_allreduce_latency_us=${median(torch).toFixed(0)}  (torch.distributed.all_reduce, the same; spread ${spread(torch)})`);
  console.log(`allreduce_latency_ratio=${(median(ours) / median(torch)).toFixed(3)}  (ours / PyTorch)`);
}

void main();
