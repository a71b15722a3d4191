// Writing report.html: after every stage (from results.json and metrics.jsonl, keeping the
// analysis saved in the run folder), and in full at the end of a pipeline or with
// `simclr report`, which computes the analysis first.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { writeAtomic } from '../util/fs';
import { RunFolder } from '../train';
import { openRun } from '../run/folder';
import { ANALYSIS_FILE, analyseRun, readAnalysis, staleness, type AnalysisOptions, type ReportAnalysis } from './analysis';
import { curves, readMetrics } from './curves';
import { reportHtml, type ResultRow } from './page';

export const REPORT_FILE = 'report.html';


/** The page for a run folder, with the given analysis (default: the one saved there, if any). */
export function renderReport(run: RunFolder, analysis: ReportAnalysis | null = readAnalysis(run)): string {
  const results: ResultRow[] = existsSync(run.path('results.json')) ? (JSON.parse(readFileSync(run.path('results.json'), 'utf8')) as { results: ResultRow[] }).results : [];
  const configText = existsSync(run.path('config.json')) ? readFileSync(run.path('config.json'), 'utf8') : null;
  return reportHtml({
    run: run.dir,
    configText,
    results,
    curves: curves(readMetrics(run.path('metrics.jsonl'))),
    analysis,
    stale: analysis ? staleness(run, analysis) : null,
    analyseCommand: `simclr report --model ${run.dir}`,
  });
}

/** Rewrites the run's report.html from what the run folder holds (no model is loaded). */
export function writeReport(run: RunFolder): void {
  writeAtomic(run.path(REPORT_FILE), renderReport(run));
}

export interface BuildReportOptions extends AnalysisOptions {
  /** Where to write the page (default: the run's report.html, with the analysis saved beside it; elsewhere, the run folder is only read). */
  out?: string;
}

/** Computes the analysis (the models on the test set, views, the embedding map) and writes the full report. */
export async function buildReport(o: BuildReportOptions): Promise<{ file: string; analysis: ReportAnalysis; bytes: number }> {
  openRun(o.run); // a clear error for a folder that is not a run
  const run = new RunFolder(o.run);
  const analysis = await analyseRun(o);
  const file = o.out ?? run.path(REPORT_FILE);
  const inRun = resolve(file) === resolve(run.path(REPORT_FILE));
  if (inRun) writeAtomic(run.path(ANALYSIS_FILE), JSON.stringify(analysis));
  const html = renderReport(run, analysis);
  writeAtomic(file, html);
  return { file, analysis, bytes: Buffer.byteLength(html) };
}
