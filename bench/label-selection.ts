// Which images to label, measured: one pretrained encoder per data set, budgets of 10, 20,
// 50 and 130 labels (1, 2, 5 and 13 a class on average; the strategies do not know the
// classes), strategies random / kmeans / typical, 3 seeds. At every cell suggest-labels
// chooses, the simulated annotator reveals the chosen images' own labels in the CSV (the
// only place they are read), and the baseline and fine-tuning train on that CSV as a user's;
// distillation too at the largest budget. The bench makes no choice of settings, so it holds
// out no validation split; the test set is read once per stage. Stopped, it continues.
//
//   npm run bench:label-selection                          CIFAR-10, width 0.5, 4 pretraining epochs
//   npm run bench:label-selection -- --encoder runs/x      an encoder pretrained already
//   npm run bench:label-selection -- --table               the figures of what has finished
//   npm run bench:label-selection -- --data fashion-mnist --name fashion-mnist --width 0.25 --crop-min 0.2 --batch 256
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { annotate, readLabelCsv, writeImageFolder } from '../src/data';
import { CLI, mean, pretrainDone, results, runCli, se, seedList } from './stage-runs';
import { DATASETS } from '../test/helpers';
import { RESULTS_DIR, writeBenchResults } from './results-file';

import { isBuiltInSpec } from '../src/run';

interface Plan {
  name: string;
  train: string;
  test: string;
  out: string;
  encoder: string;
  width: number;
  pretrainEpochs: number;
  /** further pretraining flags (the demo's crops for Fashion-MNIST) */
  pretrainExtra: string[];
  budgets: number[];
  strategies: string[];
  seeds: number[];
  distill: { budget: number; images: number; epochs: number };
  threads: string;
}

const STAGE = (kind: string) => `${kind}-to-label`;

function ensureEncoder(p: Plan): boolean {
  if (pretrainDone(p.encoder)) return true;
  const common = ['--threads', p.threads];
  const args = existsSync(join(p.encoder, 'config.json'))
    ? ['pretrain', '--out', p.encoder, '--resume', ...common]
    : ['pretrain', '--data', p.train, '--out', p.encoder, '--width', String(p.width), '--epochs', String(p.pretrainEpochs), '--seed', '0', ...p.pretrainExtra, ...common];
  return runCli(CLI, args, `${p.name}: pretraining the encoder`);
}

/** One cell's run folder: the encoder's files, with the test set to read. */
function cellFolder(p: Plan, budget: number, strategy: string, seed: number): string {
  const dir = join(p.out, p.name, `b${budget}-${strategy}-s${seed}`);
  if (!existsSync(join(dir, 'pretrain.safetensors'))) {
    mkdirSync(dir, { recursive: true });
    const config = JSON.parse(readFileSync(join(p.encoder, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, testData: p.test }, null, 2));
    for (const f of ['pretrain.json', 'pretrain.safetensors']) copyFileSync(join(p.encoder, f), join(dir, f));
  }
  return dir;
}

function runCell(p: Plan, budget: number, strategy: string, seed: number): boolean {
  const dir = cellFolder(p, budget, strategy, seed);
  const csv = join(dir, 'to-label.csv');
  const what = `${p.name}: ${budget} labels, ${strategy}, seed ${seed}`;
  if (!existsSync(csv) && !runCli(CLI, ['suggest-labels', '--model', dir, '--count', String(budget), '--strategy', strategy, '--seed', String(seed), '--out', csv, '--threads', p.threads], `${what}: suggest-labels`)) return false;
  if (!csvLabeled(csv)) annotate(csv);
  const common = ['--labeled', csv, '--classes', p.train, '--seed', String(seed), '--threads', p.threads];
  const kinds = budget === p.distill.budget ? ['supervised', 'finetune', 'distill'] : ['supervised', 'finetune'];
  for (const kind of kinds) {
    if (results(dir).some((r) => r.stage === STAGE(kind))) continue;
    const extra = kind === 'distill' ? ['--max-images', String(p.distill.images), '--epochs', String(p.distill.epochs)] : [];
    const from = kind === 'distill' ? '--teacher' : '--from';
    if (!runCli(CLI, [kind, from, dir, ...common, ...extra], `${what}: ${kind}`)) return false;
  }
  return true;
}

function csvLabeled(csv: string): boolean {
  try {
    return readLabelCsv(csv).unlabeledRows === 0;
  } catch {
    return false;
  }
}

/** How many classes a cell's chosen images cover (their revealed labels). */
function coverage(p: Plan, budget: number, strategy: string, seed: number): number | undefined {
  const csv = join(p.out, p.name, `b${budget}-${strategy}-s${seed}`, 'to-label.csv');
  if (!csvLabeled(csv)) return undefined;
  return new Set(readLabelCsv(csv).images.map((i) => i.label)).size;
}

const top1 = (p: Plan, budget: number, strategy: string, seed: number, kind: string): number | undefined =>
  results(join(p.out, p.name, `b${budget}-${strategy}-s${seed}`)).find((r) => r.stage === STAGE(kind))?.top1;

/** The figures of what has finished: means over seeds, and typical/kmeans minus random (paired by seed). */
function figures(p: Plan): { figures: Record<string, number | string>; cells: unknown[] } {
  const out: Record<string, number | string> = {};
  const cells: unknown[] = [];
  console.log(`\n${p.name}: test top-1 (%), mean ± standard error over seeds ${p.seeds.join(', ')}`);
  for (const budget of p.budgets) {
    for (const strategy of p.strategies) {
      for (const kind of ['supervised', 'finetune', 'distill']) {
        const v = p.seeds.map((s) => top1(p, budget, strategy, s, kind)).filter((x): x is number => x !== undefined);
        if (!v.length) continue;
        cells.push({ budget, strategy, stage: kind, top1: v, seeds: p.seeds.slice(0, v.length) });
        console.log(`  ${String(budget).padStart(4)} labels  ${strategy.padEnd(8)} ${kind.padEnd(10)} ${mean(v).toFixed(2)}${v.length > 2 ? ` ± ${se(v).toFixed(2)}` : ` (${v.map((x) => x.toFixed(2)).join(', ')})`}`);
        out[`label_selection_${p.name}_${budget}_${strategy}_${kind}_top1`] = Number(mean(v).toFixed(2));
      }
    }
    for (const strategy of p.strategies) {
      const covered = p.seeds.map((s) => coverage(p, budget, strategy, s)).filter((x): x is number => x !== undefined);
      if (!covered.length) continue;
      out[`label_selection_${p.name}_${budget}_${strategy}_classes_covered`] = Number(mean(covered).toFixed(2));
      console.log(`  ${String(budget).padStart(4)} labels  ${strategy.padEnd(8)} classes covered ${mean(covered).toFixed(2)} (${covered.join(', ')})`);
    }
    for (const strategy of p.strategies.filter((s) => s !== 'random')) {
      const gains = p.seeds.map((s) => [top1(p, budget, strategy, s, 'finetune'), top1(p, budget, 'random', s, 'finetune')]).filter(([a, b]) => a !== undefined && b !== undefined).map(([a, b]) => a! - b!);
      if (!gains.length) continue;
      const key = strategy === 'typical' ? `label_selection_gain_${p.name}_${budget}` : `label_selection_gain_${strategy}_${p.name}_${budget}`;
      out[key] = Number(mean(gains).toFixed(2));
      if (gains.length > 1) out[`${key}_se`] = Number(se(gains).toFixed(2));
      console.log(`${key}=${mean(gains).toFixed(2)}${gains.length > 1 ? ` (se ${se(gains).toFixed(2)}, ${gains.length} seeds)` : ' (1 seed)'}`);
    }
  }
  return { figures: out, cells };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: join(DATASETS, 'cifar10') },
      name: { type: 'string', default: 'cifar10' },
      out: { type: 'string', default: join('runs', 'label-selection') },
      encoder: { type: 'string' },
      width: { type: 'string', default: '0.5' },
      'pretrain-epochs': { type: 'string', default: '4' },
      'crop-min': { type: 'string' },
      budgets: { type: 'string', default: '10,20,50,130' },
      strategies: { type: 'string', default: 'random,kmeans,typical' },
      seeds: { type: 'string', default: '0-2' },
      'distill-images': { type: 'string', default: '10000' },
      'distill-epochs': { type: 'string', default: '2' },
      threads: { type: 'string', default: '2' },
      table: { type: 'boolean', default: false },
    },
  });
  const budgets = values.budgets!.split(',').map(Number);
  // fashion-mnist (and the other built-in sets) are written out as image files first: labels are chosen among files.
  const data = isBuiltInSpec(values.data!) ? await writeImageFolder(values.data!, join(values.out!, `${values.name}-images`)) : values.data!;
  const p: Plan = {
    name: values.name!,
    train: resolve(data, 'train'),
    test: resolve(data, 'test'),
    out: values.out!,
    encoder: resolve(values.encoder ?? join(values.out!, values.name!, 'encoder')),
    width: Number(values.width),
    pretrainEpochs: Number(values['pretrain-epochs']),
    pretrainExtra: values['crop-min'] ? ['--crop-min', values['crop-min']] : [],
    budgets,
    strategies: values.strategies!.split(','),
    seeds: seedList(values.seeds!),
    distill: { budget: Math.max(...budgets), images: Number(values['distill-images']), epochs: Number(values['distill-epochs']) },
    threads: values.threads!,
  };
  if (!values.table) {
    if (!ensureEncoder(p)) return 1;
    for (const budget of p.budgets) for (const seed of p.seeds) for (const strategy of p.strategies) if (!runCell(p, budget, strategy, seed)) return 1;
  }
  const { figures: f, cells } = figures(p);
  // One file for every data set: this one's figures and cells replace its own, the others' stay.
  const before = existsSync(join(RESULTS_DIR, 'label-selection.json')) ? (JSON.parse(readFileSync(join(RESULTS_DIR, 'label-selection.json'), 'utf8')) as { figures: Record<string, number | string>; sets?: Record<string, unknown> }) : null;
  const kept = Object.fromEntries(Object.entries(before?.figures ?? {}).filter(([k]) => !k.includes(`_${p.name}_`)));
  const sets = { ...(before?.sets ?? {}), [p.name]: { encoder: { run: p.encoder, width: p.width, pretrainEpochs: p.pretrainEpochs }, distill: p.distill, cells } };
  const file = writeBenchResults('label-selection', { ...kept, ...f }, { sets });
  console.log(`wrote ${file}`);
  return 0;
}

main().then((code) => (process.exitCode = code));
