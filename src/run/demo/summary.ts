// The demo's closing table: each model's test top-1 and minutes, the validation top-1 on the
// labels the demo held back (marked: a user with this many labels would not have them), and
// the share of the baseline's test errors the SimCLR models remove.
import type { RunFolder } from '../../train';
import { readResults, type Result } from '../results';

export const DEMO_ROWS = [
  ['supervised-random', 'baseline, random labels'],
  ['supervised-suggested', 'baseline, suggested labels'],
  ['finetune-suggested', 'SimCLR fine-tuned, suggested'],
  ['distill-suggested', 'SimCLR distilled, suggested'],
] as const;

/** The share (%) of the baseline's test errors that a model removes. */
export const errorsRemoved = (model: number, baseline: number): number => (100 * (model - baseline)) / (100 - baseline);

export function demoSummary(run: RunFolder, o: { labels: number; heldBack: number }): string {
  const results = readResults(run);
  const get = (stage: string): Result | undefined => results.find((r) => r.stage === stage);
  const lines = [`${o.labels} labels                      test top-1   validation*   minutes`];
  for (const [stage, name] of DEMO_ROWS) {
    const r = get(stage);
    if (!r) continue;
    lines.push(`${name.padEnd(30)} ${r.top1.toFixed(2).padStart(10)}   ${(r.val_top1?.toFixed(2) ?? '-').padStart(11)}   ${(r.seconds / 60).toFixed(1).padStart(7)}`);
  }
  lines.push(`* on ${o.heldBack} labels the demo holds back to show the trend; a user with ${o.labels} labels would not have them`);
  const [random, base, tuned, distilled] = DEMO_ROWS.map(([s]) => get(s)?.top1);
  for (const [name, v] of [['fine-tuned', tuned], ['distilled', distilled]] as const) {
    if (v === undefined || base === undefined) continue;
    const vsRandom = random === undefined ? '' : `; ${errorsRemoved(v, random).toFixed(0)}% of the random-label baseline's`;
    lines.push(`the ${name} model removes ${errorsRemoved(v, base).toFixed(0)}% of the test errors of the baseline on the same labels${vsRandom}`);
  }
  lines.push(`report: ${run.path('report.html')}`);
  return lines.join('\n');
}
