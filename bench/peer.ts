// Talks to bench/py/peer.py: one long-lived PyTorch process, one JSON line per command.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const PYTHON = process.env.SIMCLR_PYTHON ?? '/usr/bin/python3';

export class PyTorchPeer {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterableIterator<string>;

  constructor() {
    this.proc = spawn(PYTHON, [join(__dirname, '..', '..', 'bench', 'py', 'peer.py')], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr.on('data', (d: Buffer) => process.stderr.write(`[pytorch] ${d}`));
    this.lines = createInterface({ input: this.proc.stdout })[Symbol.asyncIterator]();
  }

  async call<R = Record<string, number>>(cmd: object): Promise<R> {
    this.proc.stdin.write(JSON.stringify(cmd) + '\n');
    const next = await this.lines.next();
    if (next.done) throw new Error(`the PyTorch peer (${PYTHON}) exited; is python3-torch installed?`);
    const out = JSON.parse(next.value) as R & { error?: string };
    if (out.error) throw new Error(`PyTorch peer: ${out.error}`);
    return out;
  }

  close(): void {
    this.proc.stdin.end();
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
