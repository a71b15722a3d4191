// Training curves from metrics.jsonl: each stage's loss (every step, thinned, and the mean of
// each epoch), pretraining's contrastive accuracy and kNN monitor, and validation top-1, all
// against the epoch (a step's epoch is fractional: how far into its epoch it came).
import { existsSync, readFileSync } from 'node:fs';

export interface MetricRow {
  stage: string;
  epoch?: number;
  step?: number;
  loss?: number;
  contrastive_acc?: number;
  knn_top1?: number;
  val_top1?: number;
}

export interface Curves {
  loss: { stage: string; epoch: number; loss: number; kind: 'step' | 'epoch mean' }[];
  /** Pretraining: contrastive accuracy (%) per step and its epoch means; kNN top-1 (%) per epoch. */
  pretrain: { epoch: number; value: number; series: string }[];
  validation: { stage: string; epoch: number; top1: number }[];
}

/** Steps drawn per stage and curve: more than a chart's width in pixels shows nothing more. */
export const MAX_STEP_POINTS = 600;

/** Every k-th point (and the last), so that a long run's curve stays a small page. */
export function thin<P>(points: P[], max = MAX_STEP_POINTS): P[] {
  if (points.length <= max) return points;
  const stride = Math.ceil(points.length / max);
  const out = points.filter((_, i) => i % stride === 0);
  if ((points.length - 1) % stride !== 0) out.push(points[points.length - 1]!);
  return out;
}

export function readMetrics(file: string): MetricRow[] {
  if (!existsSync(file)) return [];
  const rows: MetricRow[] = [];
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    try {
      const row = JSON.parse(line) as MetricRow;
      if (typeof row.stage === 'string') rows.push(row);
    } catch {
      // A line cut short (a process killed while appending) is the only kind expected: skip it.
      if (i < lines.length - 2) throw new Error(`${file}: line ${i + 1} is not JSON`);
    }
  });
  return rows;
}

const round = (v: number, digits: number): number => Number(v.toFixed(digits));

/** Per step of one stage and one value: [fractional epoch, value], in step order. */
function perStep(rows: MetricRow[], value: (m: MetricRow) => number | undefined): [number, number, number][] {
  const byEpoch = new Map<number, MetricRow[]>();
  for (const m of rows) {
    const v = value(m);
    if (v === undefined || !Number.isFinite(v) || m.epoch === undefined) continue;
    if (!byEpoch.has(m.epoch)) byEpoch.set(m.epoch, []);
    byEpoch.get(m.epoch)!.push(m);
  }
  const out: [number, number, number][] = [];
  for (const [epoch, ms] of [...byEpoch].sort((a, b) => a[0] - b[0])) {
    ms.sort((a, b) => (a.step ?? 0) - (b.step ?? 0));
    ms.forEach((m, k) => out.push([epoch - 1 + (k + 1) / ms.length, value(m)!, epoch]));
  }
  return out;
}

function epochMeans(points: [number, number, number][]): [number, number][] {
  const sums = new Map<number, [number, number]>();
  for (const [, v, epoch] of points) {
    const s = sums.get(epoch) ?? [0, 0];
    sums.set(epoch, [s[0] + v, s[1] + 1]);
  }
  return [...sums].map(([epoch, [sum, n]]) => [epoch, sum / n]);
}

export function curves(metrics: MetricRow[]): Curves {
  const byStage = new Map<string, MetricRow[]>();
  for (const m of metrics) {
    if (!byStage.has(m.stage)) byStage.set(m.stage, []);
    byStage.get(m.stage)!.push(m);
  }
  const c: Curves = { loss: [], pretrain: [], validation: [] };
  for (const [stage, rows] of byStage) {
    const loss = perStep(rows, (m) => m.loss);
    for (const [epoch, v] of thin(loss)) c.loss.push({ stage, epoch: round(epoch, 4), loss: round(v, 5), kind: 'step' });
    for (const [epoch, v] of epochMeans(loss)) c.loss.push({ stage, epoch, loss: round(v, 5), kind: 'epoch mean' });
    for (const m of rows) if (m.val_top1 !== undefined && m.epoch !== undefined) c.validation.push({ stage, epoch: m.epoch, top1: m.val_top1 });
  }
  const pre = byStage.get('pretrain') ?? [];
  const acc = perStep(pre, (m) => (m.contrastive_acc === undefined ? undefined : 100 * m.contrastive_acc));
  for (const [epoch, v] of thin(acc)) c.pretrain.push({ epoch: round(epoch, 4), value: round(v, 3), series: 'contrastive accuracy, per step' });
  for (const [epoch, v] of epochMeans(acc)) c.pretrain.push({ epoch, value: round(v, 3), series: 'contrastive accuracy, epoch mean' });
  for (const m of pre) if (m.knn_top1 !== undefined && m.epoch !== undefined) c.pretrain.push({ epoch: m.epoch, value: m.knn_top1, series: 'kNN top-1 on the test set' });
  return c;
}
