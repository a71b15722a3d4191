// Measured figures in the README only inside generated blocks (<!-- results:NAME --> ...
// <!-- /results:NAME -->), rendered from bench/results/NAME.json: a figure cannot be typed
// by hand. `npm run docs:results` rewrites the blocks; test/results-docs.test.ts fails when
// a block differs from what its file renders.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RESULTS_DIR } from './results-file';

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

const where = (r: ResultsFile): string => `\`${r.command}\`, commit ${r.commit}, ${r.date.slice(0, 10)}, ${r.processor.model} (family ${r.processor.family} model ${r.processor.modelNumber}${r.processor.flags.length ? `, ${r.processor.flags.join(', ')}` : ''}), ${r.processor.cores} cores`;

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

/** name=value lines, as the benchmark printed them, and where they came from. */
function figureList(r: ResultsFile): string {
  return ['```text', ...Object.entries(r.figures).map(([k, v]) => `${k}=${v}`), '```', `From ${where(r)}.`].join('\n');
}

const RENDER: Record<string, (r: ResultsFile) => string> = { 'label-selection': labelSelection, 'select-speed': figureList, budget: figureList };

/** The text with every results block rendered from its file (a block whose file is missing says so). */
export function withResults(text: string): string {
  return text.replace(/(<!-- results:([a-z-]+) -->\n)[\s\S]*?(<!-- \/results:\2 -->)/g, (_, open: string, name: string, close: string) => {
    const r = readResults(name);
    const render = RENDER[name] ?? figureList;
    return `${open}${r ? render(r) : `(not measured yet: npm run bench:${name})`}\n${close}`;
  });
}

if (require.main === module) {
  for (const file of process.argv.slice(2).length ? process.argv.slice(2) : [join(__dirname, '..', '..', 'README.md')]) {
    const before = readFileSync(file, 'utf8');
    const after = withResults(before);
    if (after !== before) writeFileSync(file, after);
    console.error(`${file}: results blocks ${after === before ? 'up to date' : 'rewritten'}`);
  }
}
