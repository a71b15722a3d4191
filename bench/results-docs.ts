// Measured figures in the README only inside generated blocks (<!-- results:NAME --> ...
// <!-- /results:NAME -->), rendered from bench/results/NAME.json: a figure cannot be typed
// by hand. `npm run docs:results` rewrites the blocks; test/results-docs.test.ts fails when
// a block differs from what its file renders.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RESULTS_DIR } from './results-file';
import type { ClaimCell } from './claims-cells';

interface ResultsFile {
  name: string;
  command: string;
  commit: string;
  date: string;
  processor: { model: string; family: string; modelNumber: string; flags: string[]; cores: number };
  figures: Record<string, number | string>;
  [more: string]: unknown;
}

export function readResults(name: string): ResultsFile | null {
  const file = join(RESULTS_DIR, `${name}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ResultsFile) : null;
}

const machine = (r: ResultsFile): string => `${r.processor.model} (family ${r.processor.family} model ${r.processor.modelNumber}${r.processor.flags.length ? `, ${r.processor.flags.join(', ')}` : ''}), ${r.processor.cores} cores`;
/** The command, commit, date and machine; for figures converted from a kept log, when they were measured. */
const where = (r: ResultsFile): string => `\`${r.command}\`${r.measured ? ` (${r.source}, measured ${r.measured})` : ''}, commit ${r.commit}, ${r.date.slice(0, 10)}, ${machine(r)}`;
/** When the figures were measured: a converted log's own date, else the run's. */
const measuredOn = (r: ResultsFile): string => (r.measured as string | undefined) ?? r.date.slice(0, 10);

interface Cell {
  budget: number;
  strategy: string;
  stage: string;
  top1: number[];
}

function meanSe(v: number[]): string {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  if (v.length < 3) return v.map((x) => x.toFixed(2)).join(' / ');
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1));
  return `${m.toFixed(2)} ± ${(sd / Math.sqrt(v.length)).toFixed(2)}`;
}

/** Fine-tuned test top-1 by budget and strategy, the classes covered, and typical's gain over random. */
function labelSelection(r: ResultsFile): string {
  const sets = (r.sets ?? {}) as Record<string, { encoder: { width: number; pretrainEpochs: number }; cells: Cell[] }>;
  const lines: string[] = [];
  for (const [name, set] of Object.entries(sets)) {
    const budgets = [...new Set(set.cells.map((c) => c.budget))].sort((a, b) => a - b);
    lines.push(`${name} (encoder: ResNet-18 width ${set.encoder.width}, ${set.encoder.pretrainEpochs} pretraining epochs): fine-tuned test top-1 (%), mean ± standard error over seeds; classes covered by the chosen images in brackets`, '');
    lines.push('| labels | random | kmeans | typical | typical minus random |', '|---|---|---|---|---|');
    for (const b of budgets) {
      const cell = (s: string) => set.cells.find((c) => c.budget === b && c.strategy === s && c.stage === 'finetune');
      const cover = (s: string) => r.figures[`label_selection_${name}_${b}_${s}_classes_covered`];
      const show = (s: string) => (cell(s) ? `${meanSe(cell(s)!.top1)}${cover(s) !== undefined ? ` [${cover(s)}]` : ''}` : '');
      const gain = r.figures[`label_selection_gain_${name}_${b}`];
      const gainSe = r.figures[`label_selection_gain_${name}_${b}_se`];
      lines.push(`| ${b} | ${show('random')} | ${show('kmeans')} | ${show('typical')} | ${gain !== undefined ? `${gain}${gainSe !== undefined ? ` (se ${gainSe})` : ''}` : ''} |`);
    }
    lines.push('');
  }
  lines.push(`From ${where(r)}.`);
  return lines.join('\n');
}

const DEMO_NAMES: Record<string, string> = {
  'supervised-random': 'baseline, random labels',
  'supervised-suggested': 'baseline, suggested labels',
  'finetune-suggested': 'SimCLR fine-tuned, suggested labels',
  'distill-suggested': 'SimCLR distilled, suggested labels',
};

/** The demo's table over seeds: test top-1 mean ± standard error, held-back validation, and the errors removed. */
function demoSeeds(r: ResultsFile): string {
  const raw = r.figures as Record<string, number>;
  const f = new Proxy(raw, { get: (o, k: string) => (typeof o[k] === 'number' ? o[k]!.toFixed(2) : o[k]) }) as unknown as Record<string, string>;
  const seeds = ((r.seeds ?? []) as { seed: number }[]).map((s) => s.seed);
  const lines = [`Over seeds ${seeds.join(', ')}: test top-1 (%), mean ± standard error; validation on the labels the demo holds back (a user with 130 labels would not have them).`, '', '| model | test top-1 | validation |', '|---|---|---|'];
  for (const [stage, name] of Object.entries(DEMO_NAMES)) lines.push(`| ${name} | ${f[`demo_${stage}_top1_mean`]} ± ${f[`demo_${stage}_top1_se`]} | ${f[`demo_${stage}_val_top1_mean`]} |`);
  lines.push('');
  for (const model of ['finetune', 'distill']) {
    const same = `demo_${model}_vs_baseline_same_labels`;
    const random = `demo_${model}_vs_baseline_random_labels`;
    lines.push(`- ${model === 'finetune' ? 'Fine-tuned' : 'Distilled'}: ${f[`${same}_margin_mean`]} ± ${f[`${same}_margin_se`]} points over the baseline on the same labels, ${f[`${same}_errors_removed_pct_mean`]}% ± ${f[`${same}_errors_removed_pct_se`]} of its test errors removed; ${f[`${random}_errors_removed_pct_mean`]}% ± ${f[`${random}_errors_removed_pct_se`]} of the random-label baseline's.`);
  }
  if (raw.demo_budget_used_mean !== undefined) lines.push(`- The pipeline used ${Math.round(100 * raw.demo_budget_used_mean)}% of its 15-minute budget on average (per seed: ${((r.seeds ?? []) as { budget: { seconds: number; actualSeconds?: number } }[]).map((s) => `${Math.round((100 * (s.budget.actualSeconds ?? NaN)) / s.budget.seconds)}%`).join(', ')}).`);
  lines.push('', `From ${where(r)}.`);
  return lines.join('\n');
}

/** One line for the top of the README: the distilled model against the baseline on the same labels. */
function demoHeadline(r: ResultsFile): string {
  const f = r.figures as Record<string, number>;
  const v = (k: string) => f[k]!.toFixed(2);
  const seeds = ((r.seeds ?? []) as unknown[]).length;
  return `test top-1 ${v('demo_distill-suggested_top1_mean')}% ± ${v('demo_distill-suggested_top1_se')} against ${v('demo_supervised-suggested_top1_mean')}% ± ${v('demo_supervised-suggested_top1_se')} (mean ± standard error over ${seeds} seeds): ${v('demo_distill_vs_baseline_same_labels_errors_removed_pct_mean')}% of the baseline's errors removed. From ${where(r)}.`;
}

/** The quick demo as it printed: each model's test and validation top-1 per run, and the run's minutes. */
function demoQuick(r: ResultsFile): string {
  const rows = (r.rows ?? {}) as Record<string, string>;
  const runs = (r.runs ?? []) as { run: number; seconds: number; top1: Record<string, number>; val: Record<string, number> }[];
  const lines = [`\`simclr demo --quick\` (seed ${r.seed}), test top-1 (%) with the validation figure on held-back labels in brackets; ${runs.length === 1 ? 'one run: a single draw' : `${runs.length} runs`}.`, '', `| model | ${runs.map((x) => `run ${x.run}`).join(' | ')} |`, `|---|${runs.map(() => '---').join('|')}|`];
  for (const [stage, name] of Object.entries(rows)) lines.push(`| ${name} | ${runs.map((x) => `${x.top1[stage]?.toFixed(2) ?? ''} [${x.val[stage]?.toFixed(2) ?? ''}]`).join(' | ')} |`);
  lines.push(`| minutes | ${runs.map((x) => (x.seconds / 60).toFixed(1)).join(' | ')} |`, '', `From ${where(r)}.`);
  return lines.join('\n');
}

/** What a laptop run of photos costs, from the calibration at 96 pixels, and how close --budget kept to its minutes. */
function budget(r: ResultsFile): string {
  const f = r.figures as Record<string, number>;
  const passes = (20 * 60 * f.photo96_pretrain_images_per_s!) / 10_000;
  return [
    `With the laptop recipe at 96 pixels, this machine pretrains about ${f.photo96_pretrain_images_per_s} photos a second, fine-tunes about ${f.photo96_finetune_images_per_s} and classifies about ${f.photo96_inference_images_per_s}: 20 minutes of pretraining are about ${passes.toFixed(0)} passes over 10,000 photos.`,
    `\`pipeline --budget ${Math.round(f.budget_seconds! / 60)}m\` on a CIFAR-10 image folder (1% of the labels) took ${(f.budget_actual_seconds! / 60).toFixed(1)} minutes (${Math.round(100 * f.budget_actual_over_budget!)}% of its budget).`,
    `From ${where(r)}.`,
  ].join(' ');
}

/** The encoder's inference speed and its ratios to each peer (above 1: simclr-ts is faster). */
function inference(r: ResultsFile): string {
  const f = r.figures;
  const rows = (r.rows ?? []) as { model: string; precision: string; batch: number }[];
  const cell = (name: string): string => (f[name] === undefined ? 'n/a' : `${f[name]}`);
  const lines = ['| encoder | precision | batch | simclr-ts img/s | vs PyTorch eager | vs PyTorch frozen | vs onnxruntime |', '|---|---|---|---|---|---|---|'];
  for (const row of rows) {
    const key = `${row.model}_${row.precision}`;
    const model = row.model.replace(/^resnet(\d+)_(\d+)px$/, 'ResNet-$1, $2 px');
    lines.push(`| ${model} | ${row.precision} | ${row.batch} | ${cell(`inference_images_per_second_${key}`)} | ${cell(`inference_ratio_vs_pytorch_${key}`)} | ${cell(`inference_ratio_vs_pytorch_frozen_${key}`)} | ${cell(`inference_ratio_vs_onnxruntime_${key}`)} |`);
  }
  lines.push('', `Ratios: the peer's seconds over ours, median of ${r.rounds} interleaved rounds, ${r.threads} threads. PyTorch ${(r.peers as { torch: string }).torch} frozen in bfloat16 is a model converted with .bfloat16() before freezing; onnxruntime runs float32 only. From ${where(r)}.`);
  return lines.join('\n');
}

/** The pretraining step against PyTorch tuned, per model. */
function pretrainStep(r: ResultsFile): string {
  const f = r.figures;
  const cases = (r.cases ?? []) as { model: string; batch: number; suffix: string }[];
  const lines = ['| encoder | batch | whole step vs PyTorch tuned | model part vs tuned | views vs PyTorch | vs PyTorch out of the box |', '|---|---|---|---|---|---|'];
  for (const c of cases) {
    const g = (name: string): string => `${f[`${name}${c.suffix}`] ?? 'n/a'}`;
    const model = c.model.replace(/^resnet(\d+)_(\d+)px$/, 'ResNet-$1, $2 px');
    lines.push(`| ${model} | ${c.batch} | ${g('pretrain_step_ratio_vs_pytorch_tuned')} | ${g('model_step_ratio_vs_pytorch_tuned')} | ${g('views_ratio_vs_pytorch')} | ${g('pretrain_step_ratio_vs_pytorch')} |`);
  }
  lines.push('', `Ratios: PyTorch's seconds over ours, median of ${r.rounds} interleaved rounds, ${r.threads} threads, ${r.precision}${r.channelsLast ? ', channels-last' : ''}. From ${where(r)}.`);
  return lines.join('\n');
}

/** The server under load and under abuse. */
function serve(r: ResultsFile): string {
  const f = r.figures;
  const rate = Object.entries(f).filter(([k]) => /^serve_requests_per_second_threads\d+_concurrency\d+$/.test(k));
  const best = rate.sort((a, b) => Number(b[1]) - Number(a[1]))[0];
  return [
    best ? `Model ${r.model}, one ${r.image} per request: up to ${best[1]} requests/s (${best[0].replace(/^serve_requests_per_second_threads(\d+)_concurrency(\d+)$/, (_, th: string, c: string) => `${th} thread${th === '1' ? '' : 's'}, ${c} concurrent clients`)}).` : '',
    `Normal clients (8 at a time) had a p99 latency of ${f.serve_p99_quiet_ms} ms alone and ${f.serve_p99_under_abuse_ms} ms (${f.serve_p99_under_abuse_ratio}x) beside 64 slow clients holding connections, 4 clients sending 100-megapixel PNG headers and 32 clients flooding 16 images a request past the 256-image queue${r.abusers ? ` (the abusers in ${String(r.abusers)})` : ''};`,
    `${f.serve_normal_answered_under_abuse} of their requests were answered, ${f.serve_normal_busy_503_under_abuse} were told to retry (503) and ${f.serve_normal_errors_under_abuse} failed; peak memory ${f.serve_peak_rss_mib_quiet} MiB alone, ${f.serve_peak_rss_mib_under_abuse} MiB under abuse; up afterwards: ${f.serve_alive_after_abuse}.`,
    `Client and server share the machine's cores. From ${where(r)}.`,
  ]
    .filter(Boolean)
    .join(' ');
}

/** Two workers against one process with both cores, beside PyTorch DDP, and the time spent waiting in collectives. */
function scale(r: ResultsFile): string {
  const f = r.figures;
  const torch = f.torch_scale_efficiency_2proc_fp32 !== undefined
    ? ` PyTorch DDP in the same rounds (synchronized batch norm as an autograd function around libtorch's kernels, as 1.13 has none on the CPU; views excluded): ${f.torch_scale_efficiency_2proc_fp32} with synchronized batch norm, ${f.torch_scale_efficiency_2proc_local_bn_fp32} with local.`
    : '';
  return (
    `Global batch ${r.globalBatch}, ResNet-18 width ${r.width} on ${r.data}, float32: 2 workers of 1 thread reach ${f.scale_efficiency_2proc_fp32} of one process with 2 threads with batch norm over the global batch ` +
    `(waiting in collectives ${Math.round(100 * Number(f.collective_time_share_2proc_fp32))}% of a step; rounds ${f.scale_efficiency_2proc_fp32_spread}), and ${f.scale_efficiency_2proc_local_bn_fp32} with \`--batch-norm local\`; ` +
    `at the default precision (bfloat16 here) ${f.scale_efficiency_2proc} and ${f.scale_efficiency_2proc_local_bn}. Medians of ${r.rounds} interleaved rounds.${torch} ` +
    `Projected to 8 workers on 25 Gb/s: ${f.projected_efficiency_8_25Gbs}. From ${where(r)}.`
  );
}

/** One small sum between two processes: through c10d, on the direct channel, and PyTorch's. */
function collectiveLatency(r: ResultsFile): string {
  const f = r.figures;
  return (
    `A sum of ${r.values} floats between two processes over loopback, median of ${r.rounds} interleaved rounds of 1,000: ${f.direct_sum_latency_us} us on the direct channel, ` +
    `${f.allreduce_latency_us} us through c10d's process group, ${f.torch_allreduce_latency_us} us for PyTorch's \`all_reduce\` on Gloo` +
    `${f.gloo_direct_allreduce_latency_us !== undefined ? `, ${f.gloo_direct_allreduce_latency_us} us for Gloo's own all-reduce without c10d` : ''}; one TCP round trip takes ${f.tcp_roundtrip_us} us. From ${where(r)}.`
  );
}

/** Global against local batch norm on 2 workers: validation kNN accuracy, paired by seed. */
function batchNorm(r: ResultsFile): string {
  const f = r.figures;
  const per = r.perSeed as { global: number[]; local: number[] };
  const seeds = r.seeds as number[];
  return (
    `${r.data}; 2 workers, ResNet-18 width ${r.width}, ${r.epochs} epochs, batch 256. kNN top-1 on the held-out images, mean ± standard error over seeds ${seeds.join(', ')}: ` +
    `global ${f.knn_val_global_bn} ± ${f.knn_val_global_bn_se}% (per seed ${per.global.join(', ')}), local ${f.knn_val_local_bn} ± ${f.knn_val_local_bn_se}% (${per.local.join(', ')}); ` +
    `local minus global ${f.knn_val_local_minus_global} ± ${f.knn_val_local_minus_global_se} points, paired by seed: ${r.verdict}. From ${where(r)}.`
  );
}

/** The claims table: one value per seed (two seeds are both given, not a standard error). */
function claims(r: ResultsFile): string {
  const cells = (r.cells ?? []) as ClaimCell[];
  const show = (c: ClaimCell | undefined) => (c ? c.test.map((x) => x.toFixed(2)).join(' / ') : '');
  const lines = [`CIFAR-10 test top-1 (%) after ${r.pretrainEpochs} pretraining epochs; at 1% of the labels seed 0 / seed 1, elsewhere seed 0.`, '', '| width | labels | baseline | fine-tuned | distilled (same size) |', '|---|---|---|---|---|'];
  const rows = [...new Set(cells.map((c) => `${c.width}|${c.labels}`))];
  for (const row of rows) {
    const [w, labels] = row.split('|') as [string, string];
    const find = (stage: string) => cells.find((c) => `${c.width}` === w && c.labels === labels && c.stage === stage);
    lines.push(`| ${w} | ${labels} | ${show(find('supervised'))} | ${show(find('finetune'))} | ${show(find('distill'))} |`);
  }
  const f = r.figures;
  const widths = [...new Set(cells.map((c) => c.width))];
  const pair = (w: number, what: string) => [0, 1].map((s) => f[`claims_w${w}_1pct_${what}_seed${s}`]).filter((x) => x !== undefined).join(' / ');
  lines.push('', `Fine-tuned minus the baseline at 1%, seed 0 / seed 1: ${widths.map((w) => `${pair(w, 'finetune_minus_baseline')} at width ${w}`).join('; ')}. Distilled minus its teacher: ${widths.map((w) => `${pair(w, 'distill_minus_teacher')} at width ${w}`).join('; ')}.`);
  lines.push('', `From ${where(r)}.`);
  return lines.join('\n');
}

/** name=value lines, as the benchmark printed them, and where they came from. */
function figureList(r: ResultsFile): string {
  return ['```text', ...Object.entries(r.figures).map(([k, v]) => `${k}=${v}`), '```', `From ${where(r)}.`].join('\n');
}

const RENDER: Record<string, (r: ResultsFile) => string> = { 'demo-headline': demoHeadline, 'demo-quick': demoQuick, 'label-selection': labelSelection, 'select-speed': figureList, budget, 'demo-seeds': demoSeeds, inference, 'pretrain-step': pretrainStep, serve, scale, 'batch-norm': batchNorm, 'collective-latency': collectiveLatency, claims };

/** The README's compact table: one figure from each of several results files, each row naming its file. */
function summary(): string {
  const rows: string[] = ['| what | result | from |', '|---|---|---|'];
  const add = (name: string, what: string, result: (r: ResultsFile) => string) => {
    const r = readResults(name);
    rows.push(`| ${what} | ${r ? result(r) : 'not measured yet'} | \`bench:${name}\`${r ? `, ${measuredOn(r)}` : ''} |`);
  };
  const f = (r: ResultsFile, k: string) => {
    const v = r.figures[k];
    return typeof v === 'number' ? v.toFixed(2) : `${v}`;
  };
  add('demo-seeds', 'The demo: Fashion-MNIST, 130 labels chosen by `suggest-labels`, 15 minutes on 2 cores (test top-1, 3 seeds)', (r) => `distilled ${f(r, 'demo_distill-suggested_top1_mean')} ± ${f(r, 'demo_distill-suggested_top1_se')}, fine-tuned ${f(r, 'demo_finetune-suggested_top1_mean')} ± ${f(r, 'demo_finetune-suggested_top1_se')}; the supervised baseline on the same labels ${f(r, 'demo_supervised-suggested_top1_mean')} ± ${f(r, 'demo_supervised-suggested_top1_se')}`);
  add('claims', 'CIFAR-10 at 1% of the labels, width 1, 4 pretraining epochs: fine-tuned minus the baseline (seed 0 / seed 1)', (r) => `${r.figures.claims_w1_1pct_finetune_minus_baseline_seed0} / ${r.figures.claims_w1_1pct_finetune_minus_baseline_seed1} points`);
  add('label-selection', 'CIFAR-10, 50 labels: `typical` choice minus random, fine-tuned (3 seeds)', (r) => `${r.figures.label_selection_gain_cifar10_50} points (se ${r.figures.label_selection_gain_cifar10_50_se})`);
  add('pretrain-step', 'Pretraining step against PyTorch with the same settings (ResNet-18 at 32 px / ResNet-50 at 224 px)', (r) => `${r.figures.pretrain_step_ratio_vs_pytorch_tuned} / ${r.figures.pretrain_step_ratio_vs_pytorch_tuned_resnet50_224px} (above 1: faster)`);
  add('inference', 'Inference against PyTorch eager, ResNet-50 at 224 px (fp32 / bf16)', (r) => `${r.figures.inference_ratio_vs_pytorch_resnet50_224px_fp32} / ${r.figures.inference_ratio_vs_pytorch_resnet50_224px_bf16}`);
  add('budget', '`pipeline --budget 10m` on a CIFAR-10 folder', (r) => `${(Number(r.figures.budget_actual_seconds) / 60).toFixed(1)} minutes used`);
  add('serve', '`serve`: p99 latency of normal clients, alone / beside abusive ones (slow, oversized, flooding)', (r) =>
    `${r.figures.serve_p99_quiet_ms} / ${r.figures.serve_p99_under_abuse_ms} ms (${r.figures.serve_p99_under_abuse_ratio}x); peak memory ${r.figures.serve_peak_rss_mib_under_abuse} MiB; up afterwards: ${r.figures.serve_alive_after_abuse}`);
  add('scale', '2 workers of 1 thread against 1 process of 2 threads (float32, global batch norm)', (r) =>
    `${r.figures.scale_efficiency_2proc_fp32} of the speed${r.figures.torch_scale_efficiency_2proc_fp32 !== undefined ? ` (PyTorch DDP: ${r.figures.torch_scale_efficiency_2proc_fp32})` : ''}`);
  return rows.join('\n');
}

const SUMMARIES: Record<string, () => string> = { summary };
/** Blocks that render another view of a results file. */
const FILE_OF: Record<string, string> = { 'demo-headline': 'demo-seeds' };

/** The pages that may quote figures: README.md and every docs/*.md, as absolute paths. */
export function docPages(): string[] {
  const root = join(__dirname, '..', '..');
  return [join(root, 'README.md'), ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(root, 'docs', f))];
}

/** The text with every results block rendered from its file (a block whose file is missing says so). */
export function withResults(text: string): string {
  return text.replace(/(<!-- results:([a-z-]+) -->\n)[\s\S]*?(<!-- \/results:\2 -->)/g, (_, open: string, name: string, close: string) => {
    if (SUMMARIES[name]) return `${open}${SUMMARIES[name]!()}\n${close}`;
    const r = readResults(FILE_OF[name] ?? name);
    const render = RENDER[name] ?? figureList;
    return `${open}${r ? render(r) : `(not measured yet: npm run bench:${name})`}\n${close}`;
  });
}

if (require.main === module) {
  for (const file of process.argv.slice(2).length ? process.argv.slice(2) : docPages()) {
    const before = readFileSync(file, 'utf8');
    const after = withResults(before);
    if (after !== before) writeFileSync(file, after);
    console.error(`${file}: results blocks ${after === before ? 'up to date' : 'rewritten'}`);
  }
}
