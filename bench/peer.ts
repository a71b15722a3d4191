// Talks to bench/py/peer.py: one long-lived PyTorch process, one JSON line per command.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { allocatorEnv } from './same-env';

export const PYTHON = process.env.SIMCLR_PYTHON ?? '/usr/bin/python3';

/**
 * 'same': the peer gets this process's environment (the benches import ./same-env, so the
 * same allocator variables, and OPENBLAS_CORETYPE as this process chose it).
 * 'out-of-the-box': what a plain `python3 train.py` gets: glibc's allocator defaults and
 * OpenBLAS's own kernel choice.
 */
export type PeerEnv = 'same' | 'out-of-the-box';

export function peerEnv(kind: PeerEnv): NodeJS.ProcessEnv {
  if (kind === 'same') return { ...process.env };
  const env = allocatorEnv('glibc');
  delete env.SIMCLR_SYSTEM_MALLOC;
  delete env.OPENBLAS_CORETYPE;
  return env;
}

/** A peer process (PyTorch by default; bench/ort-peer.js for onnxruntime) answering JSON lines. */
export class PyTorchPeer {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterableIterator<string>;

  constructor(
    env: PeerEnv = 'same',
    readonly label = 'pytorch',
    command: [string, string] = [PYTHON, join(__dirname, '..', '..', 'bench', 'py', 'peer.py')],
  ) {
    this.proc = spawn(command[0], [command[1]], { stdio: ['pipe', 'pipe', 'pipe'], env: peerEnv(env) });
    this.proc.stderr.on('data', (d: Buffer) => process.stderr.write(`[${label}] ${d}`));
    this.lines = createInterface({ input: this.proc.stdout })[Symbol.asyncIterator]();
  }

  async call<R = Record<string, number>>(cmd: object): Promise<R> {
    this.proc.stdin.write(JSON.stringify(cmd) + '\n');
    const next = await this.lines.next();
    if (next.done) throw new Error(`the ${this.label} peer exited; is python3-torch installed?`);
    const out = JSON.parse(next.value) as R & { error?: string };
    if (out.error) throw new Error(`${this.label} peer: ${out.error}`);
    return out;
  }

  close(): void {
    this.proc.stdin.end();
  }
}

/** The q-quantile (0..1) by linear interpolation between order statistics. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export function median(xs: number[]): number {
  return quantile(xs, 0.5);
}

/** The rounds of a figure as a results file keeps them: median, min, max, quartiles, and each round. */
export function roundsSummary(xs: number[], digits = 3): { median: number; min: number; max: number; q1: number; q3: number; rounds: number[] } {
  const r = (v: number): number => Number(v.toFixed(digits));
  return { median: r(median(xs)), min: r(Math.min(...xs)), max: r(Math.max(...xs)), q1: r(quantile(xs, 0.25)), q3: r(quantile(xs, 0.75)), rounds: xs.map(r) };
}

/** "min-max" of the rounds, then the interquartile range: how much the figure moved. */
export function spread(xs: number[], digits = 3): string {
  const f = (v: number): string => v.toFixed(digits);
  return `${f(Math.min(...xs))}-${f(Math.max(...xs))} (min-max of ${xs.length} rounds; IQR ${f(quantile(xs, 0.25))}-${f(quantile(xs, 0.75))})`;
}
