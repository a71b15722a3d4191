// One status line on stderr for long loops: done/total, rate, time left.
export class Progress {
  private readonly start = performance.now();
  private last = 0;
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'img',
  ) {}

  update(done: number, items: number, extra = ''): void {
    const now = performance.now();
    if (now - this.last < 500 && done < this.total) return;
    this.last = now;
    const seconds = (now - this.start) / 1000;
    const rate = items / Math.max(seconds, 1e-9);
    const left = done > 0 ? (seconds / done) * (this.total - done) : 0;
    // The first item's time (a decoder or a kernel warming up) says little of the rate: timed from a second on.
    const timing = seconds >= 1 || done === this.total ? `${rate.toFixed(1)} ${this.unit}/s, ${formatSeconds(left)} left` : 'timing';
    const line = `${this.label} ${done}/${this.total} ${timing} ${extra}`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line.padEnd(100)}`);
    else if (done === this.total || now - this.start < 1000 || done % Math.max(1, Math.floor(this.total / 10)) === 0) process.stderr.write(`${line}\n`);
  }

  finish(): void {
    if (process.stderr.isTTY) process.stderr.write('\n');
  }
}

export function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
