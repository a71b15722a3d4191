// Does --budget keep to its minutes? `pipeline --budget 10m` on a CIFAR-10 image folder (1%
// of the labels), timed from the command's start to its end, against the budget; the plan
// and the minutes each stage took are read from the run folder. Then what a laptop run of
// photos costs: the calibration's images a second for the laptop recipe's model at 96 pixels
// (the size photos are trained at), which the README turns into epochs per minute.
//
//   npm run bench:budget [-- --budget 10m --data DIR --out runs/budget]
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DATASETS } from '../test/helpers';
import { CLI } from './stage-runs';
import { writeBenchResults } from './results-file';
import { calibrate, parseBudget } from '../src/run/budget';
import { RECIPES } from '../src/run/recipes';
import { applyCompute } from '../src/run/stages/compute';

/** Images a second of each kind of step for the laptop recipe's encoder on 96-pixel RGB photos (ImageNet stem). */
function photoRates(): Record<string, number> {
  const encoder = { depth: 18 as const, width: RECIPES.laptop.encoder!.width!, skRatio: 0, cifarStem: false, inChannels: 3 as const, zeroInitResidual: false };
  const c = calibrate({ encoder, headLayers: 3, headDim: 128, size: 96, channels: 3, pretrainBatch: 256, classifierBatch: 128, numClasses: 10 }, 3);
  const perSecond = (x: number) => Math.round(1 / x);
  return { photo96_pretrain_images_per_s: perSecond(c.pretrain), photo96_finetune_images_per_s: perSecond(c.train), photo96_inference_images_per_s: perSecond(c.evaluate) };
}

function main(): number {
  const { values } = parseArgs({ options: { budget: { type: 'string', default: '10m' }, data: { type: 'string', default: join(DATASETS, 'cifar10') }, out: { type: 'string', default: join('runs', 'budget') }, threads: { type: 'string', default: '2' } } });
  const budget = parseBudget(values.budget!);
  const run = values.out!;
  if (existsSync(run)) rmSync(run, { recursive: true });
  const args = ['pipeline', '--data', join(values.data!, 'train'), '--test-data', join(values.data!, 'test'), '--labels', '1%', '--out', run, '--budget', values.budget!, '--recipe', 'laptop', '--threads', values.threads!];
  const started = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(r.stdout);
  if (r.status !== 0) {
    console.error(`budget: the pipeline stopped (exit ${r.status})`);
    return 1;
  }
  const record = JSON.parse(readFileSync(join(run, 'budget.json'), 'utf8')) as { plan: Record<string, { epochs: number; maxImages?: number; train: number; evaluate: number }> };
  const stages = (JSON.parse(readFileSync(join(run, 'results.json'), 'utf8')) as { results: { stage: string; seconds: number; top1: number }[] }).results;
  const ratio = seconds / budget;
  const figures: Record<string, number> = { budget_seconds: budget, budget_actual_seconds: Math.round(seconds), budget_actual_over_budget: Number(ratio.toFixed(3)) };
  for (const s of stages) figures[`budget_${s.stage.replace(/-.*$/, '')}_top1`] = Number(s.top1.toFixed(2));
  applyCompute({ threads: Number(values.threads) });
  Object.assign(figures, photoRates());
  for (const [k, v] of Object.entries(figures)) console.log(`${k}=${v}`);
  console.log(`wrote ${writeBenchResults('budget', figures, { plan: record.plan, stageSeconds: Object.fromEntries(stages.map((s) => [s.stage, s.seconds])) })}`);
  return 0;
}

process.exitCode = main();
