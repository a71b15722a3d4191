// report.html: a self-contained page (inline SVG, no scripts, no requests) with the loss
// and accuracy curves from metrics.jsonl and the results table from results.json.
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import type { RunFolder } from '../train';
import { extent } from '../util/extent';

/** Points drawn per curve: more than a chart's width in pixels shows nothing more. */
const MAX_POINTS = 2000;

/** Every k-th point (and the last), so that a long run's curve stays a small page. */
export function thin<P>(points: P[], max = MAX_POINTS): P[] {
  if (points.length <= max) return points;
  const stride = Math.ceil(points.length / max);
  const out = points.filter((_, i) => i % stride === 0);
  if ((points.length - 1) % stride !== 0) out.push(points[points.length - 1]!);
  return out;
}

interface Metric {
  stage: string;
  step?: number;
  epoch?: number;
  loss?: number;
  contrastive_acc?: number;
  knn_top1?: number;
  val_top1?: number;
}

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function chart(title: string, allSeries: { name: string; points: [number, number][] }[], yLabel: string): string {
  const all = allSeries.flatMap((s) => s.points);
  const series = allSeries.filter((s) => s.points.length > 0).map((s) => ({ ...s, points: thin(s.points) }));
  if (all.length === 0) return '';
  const [w, h, pad] = [640, 240, 40];
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]).filter(Number.isFinite);
  const [x0, xMax] = extent(xs);
  const x1 = xMax || 1;
  const [y0, y1] = extent(ys);
  const sx = (x: number) => pad + ((x - x0) / (x1 - x0 || 1)) * (w - 2 * pad);
  const sy = (y: number) => h - pad - ((y - y0) / (y1 - y0 || 1)) * (h - 2 * pad);
  const colours = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
  const lines = series
    .map((s, i) => `<polyline fill="none" stroke="${colours[i % colours.length]}" stroke-width="1.5" points="${s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>` + `<text x="${w - pad}" y="${pad + 14 * i}" text-anchor="end" fill="${colours[i % colours.length]}" font-size="11">${esc(s.name)}</text>`)
    .join('');
  return `<h3>${esc(title)}</h3><svg width="${w}" height="${h}" xmlns="http://www.w3.org/2000/svg" style="background:#fafafa;border:1px solid #ddd">
<line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="#999"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="#999"/>
<text x="${pad}" y="${h - 10}" font-size="11">step ${x0}</text><text x="${w - pad}" y="${h - 10}" font-size="11" text-anchor="end">${x1}</text>
<text x="4" y="${pad}" font-size="11">${y1.toPrecision(3)}</text><text x="4" y="${h - pad}" font-size="11">${y0.toPrecision(3)}</text>
<text x="${pad + 4}" y="${pad - 8}" font-size="11">${esc(yLabel)}</text>${lines}</svg>`;
}

export function writeReport(run: RunFolder): void {
  const metrics: Metric[] = existsSync(run.path('metrics.jsonl'))
    ? readFileSync(run.path('metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as Metric)
    : [];
  const byStage = new Map<string, Metric[]>();
  for (const m of metrics) {
    if (!byStage.has(m.stage)) byStage.set(m.stage, []);
    byStage.get(m.stage)!.push(m);
  }
  const lossSeries = [...byStage].map(([name, ms]) => ({ name, points: ms.filter((m) => m.loss !== undefined && m.step !== undefined).map((m): [number, number] => [m.step!, m.loss!]) }));
  const pre = byStage.get('pretrain') ?? [];
  const accSeries = [
    { name: 'contrastive accuracy', points: pre.filter((m) => m.contrastive_acc !== undefined).map((m): [number, number] => [m.step!, m.contrastive_acc! * 100]) },
    { name: 'kNN top-1', points: pre.filter((m) => m.knn_top1 !== undefined).map((m): [number, number] => [m.step!, m.knn_top1!]) },
  ];
  const valSeries = [...byStage].map(([name, ms]) => ({ name, points: ms.filter((m) => m.val_top1 !== undefined && m.step !== undefined).map((m): [number, number] => [m.step!, m.val_top1!]) }));
  const results: { stage: string; top1: number; top5: number; val_top1?: number; labeled: number; epochs: number; lr: number; precision?: string; seconds?: number }[] = existsSync(run.path('results.json'))
    ? (JSON.parse(readFileSync(run.path('results.json'), 'utf8')) as { results: never[] }).results
    : [];
  const config = existsSync(run.path('config.json')) ? readFileSync(run.path('config.json'), 'utf8') : '{}';
  const rows = results
    .map((r) => `<tr><td>${esc(r.stage)}</td><td>${r.val_top1 === undefined ? '' : r.val_top1.toFixed(2)}</td><td>${r.top1.toFixed(2)}</td><td>${r.top5.toFixed(2)}</td><td>${r.labeled}</td><td>${r.epochs}</td><td>${r.lr}</td><td>${esc(r.precision ?? '')}</td><td>${r.seconds === undefined ? '' : (r.seconds / 60).toFixed(1)}</td></tr>`)
    .join('');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>simclr-ts run ${esc(run.dir)}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:900px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#eee}pre{background:#f4f4f4;padding:1em;overflow:auto;font-size:12px}</style></head><body>
<h1>simclr-ts run</h1><p>${esc(run.dir)} &middot; written ${new Date().toISOString()}</p>
<h2>Results</h2><p>Validation: held out of the training images, never trained on as labels (settings are chosen on it); test: the held-out test set, read once per stage.</p><table><tr><th>stage</th><th>validation top-1 %</th><th>test top-1 %</th><th>top-5 %</th><th>labeled images</th><th>epochs</th><th>lr</th><th>precision</th><th>minutes</th></tr>${rows || '<tr><td colspan="9">no results yet</td></tr>'}</table>
<h2>Curves</h2>${chart('Loss by step', lossSeries, 'loss')}${chart('Pretraining accuracy (%)', accSeries, '%')}${chart('Validation top-1 (%) by step', valSeries, '%')}
<h2>Configuration</h2><pre>${esc(config)}</pre></body></html>\n`;
  const tmp = run.path(`report.html.tmp-${process.pid}`);
  writeFileSync(tmp, html);
  renameSync(tmp, run.path('report.html'));
}
