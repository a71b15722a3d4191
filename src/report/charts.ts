// The report's charts as Vega-Lite specifications (rendered in the page by vega-embed): plain
// data in, a JSON object out, so that each one can be checked without a browser.
import type { Curves } from './curves';

export type Spec = Record<string, unknown>;

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const WIDE = 620;
const base = (o: Spec): Spec => ({ $schema: SCHEMA, config: { view: { stroke: '#ddd' }, axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, titleFontSize: 12 } }, ...o });

/** Stages in the order a pipeline trains them: pretraining, then per label fraction baseline, fine-tuned, distilled. */
export function stageOrder(stages: Iterable<string>): string[] {
  const rank = (s: string): number => ['pretrain', 'supervised', 'finetune', 'distill'].indexOf(s.split('-')[0]!);
  return [...new Set(stages)].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b, 'en', { numeric: true }));
}

export interface EfficiencyPoint {
  method: string;
  /** share of the labels (%) or labeled images, as the x axis says */
  x: number;
  labels: string;
  split: 'test' | 'validation';
  top1: number;
}

/** Top-1 against the share of labels, a line per method; test solid, validation dashed. */
export function labelEfficiencyChart(points: EfficiencyPoint[], xTitle: string): Spec {
  const x = { field: 'x', type: 'quantitative', scale: { type: 'log' }, title: xTitle, axis: { values: [...new Set(points.map((p) => p.x))] } };
  const y = { field: 'top1', type: 'quantitative', scale: { zero: false }, title: 'top-1 (%)' };
  const color = { field: 'method', type: 'nominal', title: 'model', sort: ['supervised baseline', 'fine-tuned', 'distilled'] };
  return base({
    data: { values: points },
    width: WIDE,
    height: 260,
    layer: [
      // Lines carry the split's dash (their legend shows it); points carry the tooltips.
      { mark: { type: 'line', strokeWidth: 2 }, encoding: { x, y, color, detail: { field: 'split' }, strokeDash: { field: 'split', type: 'nominal', title: 'split', sort: ['test', 'validation'] } } },
      { mark: { type: 'point', filled: true, size: 50 }, encoding: { x, y, color, tooltip: [{ field: 'method' }, { field: 'labels', title: 'labels' }, { field: 'split' }, { field: 'top1', title: 'top-1 (%)', format: '.2f' }] } },
    ],
  });
}

/** Each stage's loss against the epoch (every step faint, epoch means bold), one panel per stage. */
export function lossChart(loss: Curves['loss']): Spec {
  const stages = stageOrder(loss.map((r) => r.stage));
  return base({
    data: { values: loss },
    facet: { field: 'stage', type: 'nominal', title: null, sort: stages, header: { labelFontSize: 12, labelFontWeight: 'bold' } },
    columns: 2,
    spec: {
      width: 280,
      height: 150,
      layer: [
        { transform: [{ filter: "datum.kind === 'step'" }], mark: { type: 'line', opacity: 0.35, strokeWidth: 1 }, encoding: { x: { field: 'epoch', type: 'quantitative', title: 'epoch' }, y: { field: 'loss', type: 'quantitative', scale: { zero: false }, title: 'loss' }, color: { datum: 'per step', title: null } } },
        { transform: [{ filter: "datum.kind === 'epoch mean'" }], mark: { type: 'line', point: { size: 18 }, strokeWidth: 2 }, encoding: { x: { field: 'epoch', type: 'quantitative' }, y: { field: 'loss', type: 'quantitative' }, color: { datum: 'epoch mean' }, tooltip: [{ field: 'epoch' }, { field: 'loss', format: '.4f' }] } },
      ],
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
  });
}

export const PRETRAIN_SERIES = ['contrastive accuracy, per step', 'contrastive accuracy, epoch mean', 'kNN top-1 on the test set'];
const PRETRAIN_COLOURS = ['#9ecae9', '#1f5f99', '#e45756'];

/** Pretraining's contrastive accuracy (the share of views whose partner is the most similar) and kNN top-1. */
export function pretrainChart(rows: Curves['pretrain']): Spec {
  const present = PRETRAIN_SERIES.filter((name) => rows.some((r) => r.series === name));
  return base({
    data: { values: rows },
    width: WIDE,
    height: 220,
    mark: { type: 'line', strokeWidth: 1.5 },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch' },
      y: { field: 'value', type: 'quantitative', title: '%' },
      color: { field: 'series', type: 'nominal', title: null, scale: { domain: present, range: present.map((name) => PRETRAIN_COLOURS[PRETRAIN_SERIES.indexOf(name)]!) }, legend: { orient: 'bottom', labelLimit: 300 } },
      tooltip: [{ field: 'series' }, { field: 'epoch' }, { field: 'value', title: '%', format: '.2f' }],
    },
  });
}

/** Validation top-1 after the epochs where it was measured, a line per classifier stage. */
export function validationChart(rows: Curves['validation']): Spec {
  return base({
    data: { values: rows },
    width: WIDE,
    height: 220,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch' },
      y: { field: 'top1', type: 'quantitative', scale: { zero: false }, title: 'validation top-1 (%)' },
      color: { field: 'stage', type: 'nominal', title: 'stage', sort: stageOrder(rows.map((r) => r.stage)) },
      tooltip: [{ field: 'stage' }, { field: 'epoch' }, { field: 'top1', title: 'top-1 (%)', format: '.2f' }],
    },
  });
}

/** Side of the confusion matrix (and height of the per-class bars) in pixels. */
const matrixSide = (classes: number): number => Math.min(520, Math.max(200, 30 * classes));

/** Counts of (true class, predicted class); cells shaded by the share of their row (the true class). */
export function confusionChart(classes: string[], confusion: number[][]): Spec {
  const values: { truth: string; predicted: string; count: number; share: number }[] = [];
  confusion.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, j) => values.push({ truth: classes[i]!, predicted: classes[j]!, count, share: Math.round((1000 * count) / total) / 10 }));
  });
  const side = matrixSide(classes.length);
  const cell = { field: 'share', type: 'quantitative', title: '% of row', scale: { domain: [0, 100], range: ['#ffffff', '#08519c'], interpolate: 'rgb' }, legend: { gradientLength: 120 } };
  const layers: Spec[] = [{ mark: 'rect', encoding: { color: cell, tooltip: [{ field: 'truth', title: 'true' }, { field: 'predicted' }, { field: 'count' }, { field: 'share', title: '% of the true class' }] } }];
  if (classes.length <= 20) {
    layers.push({ mark: { type: 'text', fontSize: 10 }, encoding: { text: { field: 'count' }, color: { condition: { test: 'datum.share > 55', value: 'white' }, value: 'black' } } });
  }
  return base({
    data: { values },
    width: side,
    height: side,
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: classes, title: 'predicted class', axis: { labelAngle: -40 } },
      y: { field: 'truth', type: 'nominal', sort: classes, title: 'true class' },
    },
    layer: layers,
  });
}

/** Accuracy on each class's test images, with the overall top-1 as a rule. */
export function perClassChart(classes: string[], confusion: number[][]): Spec {
  const values = classes.map((c, i) => {
    const row = confusion[i] ?? [];
    const n = row.reduce((a, b) => a + b, 0);
    return { class: c, accuracy: n ? Math.round((10000 * (row[i] ?? 0)) / n) / 100 : 0, images: n };
  });
  const total = values.reduce((a, v) => a + v.images, 0) || 1;
  const overall = confusion.reduce((a, row, i) => a + (row[i] ?? 0), 0) / total;
  return base({
    width: 240,
    height: matrixSide(classes.length),
    layer: [
      {
        data: { values },
        mark: { type: 'bar', color: '#4c78a8' },
        encoding: {
          y: { field: 'class', type: 'nominal', sort: classes, title: null },
          x: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 100] }, title: 'top-1 on the class (%)' },
          tooltip: [{ field: 'class' }, { field: 'accuracy', title: 'top-1 (%)' }, { field: 'images' }],
        },
      },
      { data: { values: [{ overall: Math.round(10000 * overall) / 100 }] }, mark: { type: 'rule', color: '#e45756', strokeDash: [4, 3], strokeWidth: 1.5 }, encoding: { x: { field: 'overall', type: 'quantitative' }, tooltip: [{ field: 'overall', title: 'all classes (%)' }] } },
    ],
  });
}

/** The 2-D map of embeddings, a point per image coloured by its true class. */
export function mapChart(points: { x: number; y: number; class: string; id: string }[], classes: string[]): Spec {
  return base({
    data: { values: points },
    width: WIDE,
    height: 480,
    mark: { type: 'circle', size: 14, opacity: 0.75 },
    encoding: {
      x: { field: 'x', type: 'quantitative', axis: null, scale: { zero: false } },
      y: { field: 'y', type: 'quantitative', axis: null, scale: { zero: false } },
      color: { field: 'class', type: 'nominal', sort: classes, scale: { scheme: classes.length <= 10 ? 'tableau10' : 'tableau20' }, title: 'true class', legend: classes.length <= 40 ? {} : null },
      tooltip: [{ field: 'class' }, { field: 'id', title: 'image' }],
    },
  });
}
