// Every benchmark's figures in one place: bench/results/<name>.json with the command, the
// commit, the date and the processor it ran on (model, family/model numbers, the flags that
// matter, cores), so a figure quoted anywhere can be traced to the run that made it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { writeAtomic } from '../src/util/fs';

export interface Processor {
  model: string;
  family: string;
  modelNumber: string;
  flags: string[];
  cores: number;
}

export function processor(): Processor {
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux: the model stays unknown
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? 'unknown';
  const flags = field('flags').split(/\s+/);
  return { model: field('model name'), family: field('cpu family'), modelNumber: field('model'), flags: ['avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile'].filter((f) => flags.includes(f)), cores: availableParallelism() };
}

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export const RESULTS_DIR = join(__dirname, '..', '..', 'bench', 'results');

/** Writes bench/results/<name>.json: the figures (name=value, as printed) and what made them. */
export function writeBenchResults(name: string, figures: Record<string, number | string>, details: Record<string, unknown> = {}, script = name): string {
  const file = join(RESULTS_DIR, `${name}.json`);
  const args = process.argv.slice(2).join(' ');
  const record = { name, command: `npm run bench:${script}${args ? ` -- ${args}` : ''}`, commit: commit(), date: new Date().toISOString(), processor: processor(), figures, ...details };
  writeAtomic(file, `${JSON.stringify(record, null, 2)}\n`);
  return file;
}
