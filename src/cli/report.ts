// simclr report: computes what the report needs a model for and writes report.html.
import type { Parsed } from './options';
import { UsageError } from './options';
import type { COMMANDS } from './specs';
import { buildReport } from '../report';

export function requireReportModel(model: string | undefined): string {
  if (!model) throw new UsageError('--model RUN is required: the run folder to report on');
  return model;
}

export async function reportCommand({ values: o }: { values: Parsed<typeof COMMANDS.report.options> }): Promise<number> {
  const run = requireReportModel(o.model);
  const started = performance.now();
  const r = await buildReport({ run, out: o.out, stage: o.stage, mapImages: o.mapImages, mistakes: o.mistakes, seed: o.seed, skipBadImages: o.skipBadImages });
  const a = r.analysis;
  const map = 'skipped' in a.map ? `no map (${a.map.skipped})` : `a map of ${a.map.points.length} test images`;
  console.log(`${o.model}:${a.stage} on ${a.testImages} test images; ${a.mistakes.length} confident mistakes shown, ${map}`);
  const s = a.seconds;
  console.log(`wrote ${r.file} (${(r.bytes / 1e6).toFixed(2)} MB) in ${((performance.now() - started) / 1000).toFixed(1)} s (classifier on the test set ${s.classifier} s, views ${s.views} s, map ${s.map} s)`);
  return 0;
}
