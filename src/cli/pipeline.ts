// `simclr pipeline`: pretrain, then for each label fraction the baseline, fine-tuning and
// distillation. Stage options arrive with their stage's prefix (--finetune-epochs 20) and
// reach each stage as typed settings.
import { existsSync, readFileSync } from 'node:fs';
import { PRETRAIN_CHECKPOINT, RunFolder, hasCheckpoint } from '../train';
import { UsageError, camel, defaultsOf, type OptionTable, type Parsed, type ParseResult } from './options';
import { PIPELINE_FIXED, PIPELINE_STAGES, type PipelineStage, type pipelineOptions } from './specs';
import { labelTag, parseLabels } from './run-context';
import { distillCommand, finetuneCommand, pretrainCommand, supervisedCommand, type Result } from './train-commands';

type PipelineValues = ParseResult<typeof pipelineOptions>['values'];

/** A stage's settings: its own defaults, the pipeline's --seed, then the options given with its prefix. */
export function stageSettings<O extends OptionTable>(stage: PipelineStage, values: PipelineValues, given: ReadonlySet<string>): Parsed<O> {
  const table = PIPELINE_STAGES[stage] as OptionTable;
  const out: Record<string, unknown> = { ...defaultsOf(table), seed: values.seed };
  const all = values as Record<string, unknown>;
  for (const name of Object.keys(table)) {
    if (PIPELINE_FIXED.has(name)) continue;
    const key = `${stage}-${name}`;
    if (given.has(key)) out[camel(name)] = all[camel(key)];
  }
  return out as Parsed<O>;
}

export async function pipelineCommand({ values, given }: { values: PipelineValues; given: ReadonlySet<string> }): Promise<number> {
  const out = values.out;
  if (!out) throw new UsageError('--out RUN is required');
  const specs = values.labels.split(',').map((s) => s.trim()).filter(Boolean);
  if (specs.length === 0) throw new UsageError(`--labels needs at least one label fraction, got '${values.labels}'`);
  for (const s of specs) parseLabels(s);
  const run = new RunFolder(out);
  const shared = { skipBadImages: values.skipBadImages };
  const pretrain = {
    ...stageSettings<typeof PIPELINE_STAGES.pretrain>('pretrain', values, given),
    ...shared,
    data: values.data,
    testData: values.testData,
    imageSize: values.imageSize,
    channels: values.channels,
    out,
    model: values.model,
    depth: values.depth,
    width: values.width,
    sk: values.sk,
    resume: values.resume || hasCheckpoint(run, PRETRAIN_CHECKPOINT),
  };
  const status = await pretrainCommand({ values: pretrain });
  if (status !== 0) return status;
  for (const labels of specs) {
    const resume = (stage: string) => existsSync(run.path(`${stage}-${labelTag(labels)}.json`));
    const common = { ...shared, labels, labelsFile: undefined };
    const steps: [string, () => Promise<number>][] = [
      ['supervised', () => supervisedCommand({ values: { ...stageSettings<typeof PIPELINE_STAGES.supervised>('supervised', values, given), ...common, from: out, resume: resume('supervised') } })],
      ['finetune', () => finetuneCommand({ values: { ...stageSettings<typeof PIPELINE_STAGES.finetune>('finetune', values, given), ...common, from: out, resume: resume('finetune') } })],
      ['distill', () => distillCommand({ values: { ...stageSettings<typeof PIPELINE_STAGES.distill>('distill', values, given), ...common, teacher: out, resume: resume('distill') } })],
    ];
    for (const [, step] of steps) {
      const code = await step();
      if (code !== 0) return code;
    }
  }
  printTable(run);
  return 0;
}

export function printTable(run: RunFolder): void {
  const file = run.path('results.json');
  if (!existsSync(file)) return;
  const { results } = JSON.parse(readFileSync(file, 'utf8')) as { results: Result[] };
  const tags = [...new Set(results.map((r) => r.stage.replace(/^[a-z]+-/, '')))];
  console.log('\ntest top-1 (%)      ' + tags.map((tg) => tg.padStart(12)).join(''));
  for (const stage of ['supervised', 'finetune', 'distill']) {
    const row = tags.map((tg) => results.find((r) => r.stage === `${stage}-${tg}`)?.top1.toFixed(2) ?? '-');
    console.log(stage.padEnd(20) + row.map((v) => v.padStart(12)).join(''));
  }
  for (const stage of ['finetune', 'distill']) {
    const row = tags.map((tg) => {
      const a = results.find((r) => r.stage === `${stage}-${tg}`);
      const b = results.find((r) => r.stage === `supervised-${tg}`);
      return a && b ? `${a.top1 - b.top1 >= 0 ? '+' : ''}${(a.top1 - b.top1).toFixed(2)}` : '-';
    });
    console.log(`${stage} margin`.padEnd(20) + row.map((v) => v.padStart(12)).join(''));
  }
  console.log(`report: ${run.path('report.html')}`);
}
