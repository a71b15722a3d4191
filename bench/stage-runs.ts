// Shared by the long accuracy benchmarks (variants, claims): run `simclr` stage commands
// one after another, skipping what a run folder already holds, so a stopped bench continues.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface StageResult {
  stage: string;
  top1: number;
  val_top1?: number;
  seconds?: number;
}

export const CLI = join(__dirname, '..', 'src', 'cli', 'main.js');

export const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
export const sd = (v: number[]): number => (v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1)) : NaN);
/** Standard error of the mean (of paired differences, where the values are differences). */
export const se = (v: number[]): number => sd(v) / Math.sqrt(v.length);

export function seedList(text: string): number[] {
  const range = /^(\d+)-(\d+)$/.exec(text);
  if (range) return Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i);
  return text.split(',').map((s) => Number(s.trim()));
}

/** The stages recorded in a run folder's results.json (none if it has none yet). */
export function results(dir: string): StageResult[] {
  const file = join(dir, 'results.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { results: StageResult[] }).results : [];
}

/** Pretraining in `dir` has run all its epochs (a checkpoint is written after each). */
export function pretrainDone(dir: string): boolean {
  const file = join(dir, 'pretrain.json');
  if (!existsSync(file) || !existsSync(join(dir, 'pretrain.safetensors'))) return false;
  const meta = JSON.parse(readFileSync(file, 'utf8')) as { epoch: number; config: { epochs: number } };
  return meta.epoch >= meta.config.epochs;
}

/** Runs one simclr command; false (after saying which) when it did not finish. */
export function runCli(cli: string, args: string[], what: string): boolean {
  const res = spawnSync(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (res.status === 0) return true;
  console.error(`${what} stopped (exit ${res.status ?? res.signal}): simclr ${args.join(' ')}; run the bench again to continue`);
  return false;
}
