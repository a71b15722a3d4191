// `simclr import FILE`: published weights -> a run folder, and what to run next.
import type { ParseResult } from './options';
import type { COMMANDS } from './specs';
import { UsageError } from './options';
import { dataPlan, encoderPlan } from './train-commands';
import { importWeights, type ImportPlan } from '../run/import';
import * as t from '../torch';

/** The import a command line describes: one weights file, the run folder and the images. */
export function importPlanOf(values: Record<string, unknown>, given: ReadonlySet<string>, positionals: string[]): ImportPlan {
  if (positionals.length !== 1) throw new UsageError(`import takes one weights file, got ${positionals.length ? positionals.join(' ') : 'none'} (simclr import FILE --unlabeled DIR --out RUN)`);
  return { file: positionals[0]!, out: String(values.out ?? ''), data: dataPlan(values, given) ?? {}, encoder: encoderPlan(values, given), seed: Number(values.seed ?? 0), skipBadImages: Boolean(values.skipBadImages) };
}

export async function importCommand({ values, given, positionals }: Pick<ParseResult<typeof COMMANDS.import.options>, 'values' | 'given' | 'positionals'>): Promise<number> {
  const plan = importPlanOf(values as Record<string, unknown>, given, positionals);
  const settings = t.computeSettings();
  const { run, layout } = await importWeights(plan, { precision: settings.precision, channelsLast: settings.channelsLast, threads: t.getNumThreads() });
  const e = layout.encoder;
  console.log(`${positionals[0]}: ${layout.source} weights, ResNet-${e.depth} (width ${e.width}${e.skRatio ? ', SK' : ''}, ${e.cifarStem ? 'CIFAR' : 'ImageNet'} stem), ${layout.head ? `its ${layout.head.layers}-layer projection head` : 'a fresh projection head'}`);
  console.log(`made ${run}: next, simclr finetune --from ${run} --labeled FILE.csv, simclr suggest-labels --model ${run} --count N, or simclr eval --model ${run} --knn`);
  return 0;
}
