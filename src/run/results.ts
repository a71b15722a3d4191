// A run's results: results.json (test top-1/top-5 of each stage with its budget), the table
// printed at the end of a pipeline, and the report rewritten whenever a result arrives.
import { existsSync, readFileSync } from 'node:fs';
import type { Precision } from '../torch';
import type { RunFolder } from '../train';
import { writeReport } from './report';

export interface Result {
  stage: string;
  top1: number;
  top5: number;
  /** top-1 (%) on the run's validation split (held out of the training images) and its size */
  val_top1?: number;
  val_images?: number;
  labeled: number;
  epochs: number;
  lr: number;
  /** Forward-pass precision the stage trained in. */
  precision: Precision;
  /** Wall time of this stage's training (and evaluation), this session. */
  seconds: number;
}

export function readResults(run: RunFolder): Result[] {
  const file = run.path('results.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { results: Result[] }).results : [];
}

/** Adds (or replaces) a stage's result and rewrites the report. */
export function recordResult(run: RunFolder, result: Result): void {
  const next = readResults(run).filter((r) => r.stage !== result.stage);
  next.push(result);
  run.writeJson('results.json', { results: next });
  writeReport(run);
}

/** A stage checkpoint's JSON as written (null when the stage has none). */
export function stageMeta(run: RunFolder, stage: string): { config?: unknown } | null {
  const file = run.path(`${stage}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { config?: unknown }) : null;
}

/** The table a pipeline ends with: test top-1 per stage and label fraction, and the margins over the baseline. */
export function resultsTable(run: RunFolder): string {
  const results = readResults(run);
  if (results.length === 0) return '';
  const tags = [...new Set(results.map((r) => r.stage.replace(/^[a-z]+-/, '')))];
  const lines = ['test top-1 (%)      ' + tags.map((tg) => tg.padStart(12)).join('')];
  for (const stage of ['supervised', 'finetune', 'distill']) {
    const row = tags.map((tg) => results.find((r) => r.stage === `${stage}-${tg}`)?.top1.toFixed(2) ?? '-');
    lines.push(stage.padEnd(20) + row.map((v) => v.padStart(12)).join(''));
  }
  for (const stage of ['finetune', 'distill']) {
    const row = tags.map((tg) => {
      const a = results.find((r) => r.stage === `${stage}-${tg}`);
      const b = results.find((r) => r.stage === `supervised-${tg}`);
      return a && b ? `${a.top1 - b.top1 >= 0 ? '+' : ''}${(a.top1 - b.top1).toFixed(2)}` : '-';
    });
    lines.push(`${stage} margin`.padEnd(20) + row.map((v) => v.padStart(12)).join(''));
  }
  if (results.some((r) => r.val_top1 !== undefined)) {
    lines.push('validation top-1 (%)' + tags.map((tg) => tg.padStart(12)).join(''));
    for (const stage of ['supervised', 'finetune', 'distill']) {
      const row = tags.map((tg) => results.find((r) => r.stage === `${stage}-${tg}`)?.val_top1?.toFixed(2) ?? '-');
      lines.push(stage.padEnd(20) + row.map((v) => v.padStart(12)).join(''));
    }
  }
  lines.push(`report: ${run.path('report.html')}`);
  return lines.join('\n');
}
