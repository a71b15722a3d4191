// The claims benchmark's figures as cells (width, labels, stage: one test top-1 per seed),
// from its run folders or from the tables a run printed and bench/claims-results.md keeps.
export type ClaimStage = 'supervised' | 'finetune' | 'distill';
export interface ClaimCell {
  width: number;
  labels: string;
  stage: ClaimStage;
  seeds: number[];
  test: number[];
  /** Validation top-1: per seed from run folders; the mean over seeds from a log. */
  val: number[];
}

const STAGES: ClaimStage[] = ['supervised', 'finetune', 'distill'];

/** A table cell such as "59.05 [58.46]" or "35.60 ± 2.35 [35.28]": the value and the bracketed validation. */
function parseCell(text: string): { value: number; val: number } | null {
  const m = /^\s*(-?[\d.]+)(?:\s*±\s*[\d.]+)?\s*\[(-?[\d.]+)\]\s*$/.exec(text);
  return m ? { value: Number(m[1]), val: Number(m[2]) } : null;
}

/**
 * Cells from the kept log: the first table (every width; at 1% its cells are means) gives
 * the single-seed rows and the validation, and each "Per seed at 1%" line gives the 1%
 * test figures of seeds 0 and 1 (baseline / fine-tuned / distilled), in the order of the widths.
 */
export function cellsFromLog(text: string): ClaimCell[] {
  const table = text.split('\n').filter((l) => /^\| [\d.]+ \| \d+% \|/.test(l));
  const rows = new Map<string, string[]>();
  for (const line of table) {
    const parts = line.split('|').slice(1, -1).map((s) => s.trim());
    const key = `${parts[0]}|${parts[1]}`;
    if (!rows.has(key)) rows.set(key, parts.slice(2));
  }
  const perSeed = [...text.matchAll(/seed 0 (\d+\.\d+) \/ (\d+\.\d+) \/ (\d+\.\d+), seed 1\s+(\d+\.\d+) \/ (\d+\.\d+) \/ (\d+\.\d+)/g)];
  const widths = [...new Set([...rows.keys()].map((k) => Number(k.split('|')[0])))];
  if (perSeed.length !== widths.length) throw new Error(`expected one "Per seed at 1%" line per width (${widths.length}), found ${perSeed.length}`);
  const cells: ClaimCell[] = [];
  for (const [key, parts] of rows) {
    const [w, labels] = key.split('|') as [string, string];
    STAGES.forEach((stage, i) => {
      const cell = parseCell(parts[i] ?? '');
      if (!cell) return;
      if (labels === '1%') {
        const m = perSeed[widths.indexOf(Number(w))]!;
        cells.push({ width: Number(w), labels, stage, seeds: [0, 1], test: [Number(m[1 + i]), Number(m[4 + i])], val: [cell.val] });
      } else {
        cells.push({ width: Number(w), labels, stage, seeds: [0], test: [cell.value], val: [cell.val] });
      }
    });
  }
  return cells;
}

/** The name=value figures of the cells: the 1% margins per seed (paired), and 10% against all labels. */
export function claimFigures(cells: ClaimCell[]): Record<string, number> {
  const find = (w: number, labels: string, stage: ClaimStage) => cells.find((c) => c.width === w && c.labels === labels && c.stage === stage);
  const figures: Record<string, number> = {};
  const round = (x: number) => Math.round(x * 100) / 100;
  for (const w of [...new Set(cells.map((c) => c.width))]) {
    const [base, ft, dist] = STAGES.map((s) => find(w, '1%', s));
    ft?.seeds.forEach((seed, i) => {
      if (base?.seeds[i] === seed) figures[`claims_w${w}_1pct_finetune_minus_baseline_seed${seed}`] = round(ft.test[i]! - base.test[i]!);
      if (dist?.seeds[i] === seed) figures[`claims_w${w}_1pct_distill_minus_teacher_seed${seed}`] = round(dist.test[i]! - ft.test[i]!);
    });
    const ft10 = find(w, '10%', 'finetune');
    const all = find(w, '100%', 'supervised');
    if (ft10 && all) figures[`claims_w${w}_10pct_finetune_minus_all_labels_baseline`] = round(ft10.test[0]! - all.test[0]!);
  }
  return figures;
}
