// report.html: one self-contained page (the chart libraries and every image inline, nothing
// fetched) with the results table, the label-efficiency chart, the training curves, and,
// where the analysis was computed, the chosen classifier's confusion matrix, per-class
// accuracy and most confident mistakes, SimCLR views, and the map of the encoder's embeddings.
import type { ReportAnalysis } from './analysis';
import { confusionChart, labelEfficiencyChart, lossChart, mapChart, perClassChart, pretrainChart, stageOrder, validationChart, type EfficiencyPoint, type Spec } from './charts';
import type { Curves } from './curves';
import { chartLibraries } from './libs';

export interface ResultRow {
  stage: string;
  top1: number;
  top5: number;
  val_top1?: number;
  labeled: number;
  epochs: number;
  lr: number;
  precision?: string;
  seconds?: number;
}

export interface ReportInput {
  /** the run folder, as named to the command */
  run: string;
  /** config.json's text, or null */
  configText: string | null;
  results: ResultRow[];
  curves: Curves;
  analysis: ReportAnalysis | null;
  /** why the analysis no longer describes the run, or null */
  stale: string | null;
  /** the command that computes (or recomputes) the analysis */
  analyseCommand: string;
}

export const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const pct = (v: number | undefined): string => (v === undefined ? '' : v.toFixed(2));
const METHODS: Record<string, string> = { supervised: 'supervised baseline', finetune: 'fine-tuned', distill: 'distilled' };

/** A label tag's share of the labels in % ('1pct' -> 1, '0.1' -> 10), or null for per-class tags. */
export function shareOf(tag: string): number | null {
  const p = /^(\d+(?:\.\d+)?)pct$/.exec(tag);
  if (p) return Number(p[1]);
  const f = Number(tag);
  return /^\d*\.?\d+$/.test(tag) && f > 0 && f <= 1 ? f * 100 : null;
}

/** Top-1 of each model at each label fraction (only when the run has several). */
export function efficiencyPoints(results: ResultRow[]): { points: EfficiencyPoint[]; xTitle: string } | null {
  const rows = results.filter((r) => /^(supervised|finetune|distill)-/.test(r.stage));
  const tags = [...new Set(rows.map((r) => r.stage.replace(/^[a-z]+-/, '')))];
  if (tags.length < 2) return null;
  const byShare = tags.every((tg) => shareOf(tg) !== null);
  const points: EfficiencyPoint[] = [];
  for (const r of rows) {
    const [kind, ...rest] = r.stage.split('-');
    const tag = rest.join('-');
    const x = byShare ? shareOf(tag)! : r.labeled;
    points.push({ method: METHODS[kind!]!, x, labels: `${tag} (${r.labeled} labeled)`, split: 'test', top1: r.top1 });
    if (r.val_top1 !== undefined) points.push({ method: METHODS[kind!]!, x, labels: `${tag} (${r.labeled} labeled)`, split: 'validation', top1: r.val_top1 });
  }
  return { points, xTitle: byShare ? 'share of the labels used (%, log scale)' : 'labeled images (log scale)' };
}

function resultsTable(results: ResultRow[]): string {
  const order = stageOrder(results.map((r) => r.stage));
  const rows = order
    .map((s) => results.find((r) => r.stage === s)!)
    .map((r) => {
      const base = results.find((b) => b.stage === r.stage.replace(/^(finetune|distill)-/, 'supervised-'));
      const margin = base && base !== r ? `${r.top1 - base.top1 >= 0 ? '+' : ''}${(r.top1 - base.top1).toFixed(2)}` : '';
      return `<tr><td>${esc(r.stage)}</td><td>${pct(r.val_top1)}</td><td><b>${pct(r.top1)}</b></td><td>${margin}</td><td>${pct(r.top5)}</td><td>${r.labeled}</td><td>${r.epochs}</td><td>${r.lr}</td><td>${esc(r.precision ?? '')}</td><td>${r.seconds === undefined ? '' : (r.seconds / 60).toFixed(1)}</td></tr>`;
    })
    .join('');
  return `<table class="results"><thead><tr><th>stage</th><th>validation top-1 %</th><th>test top-1 %</th><th>vs baseline</th><th>test top-5 %</th><th>labeled images</th><th>epochs</th><th>lr</th><th>precision</th><th>minutes</th></tr></thead><tbody>${rows || '<tr><td colspan="10">no results yet</td></tr>'}</tbody></table>`;
}

const chart = (id: string, caption: string): string => `<figure class="chart"><div id="${id}" class="vega"></div><figcaption>${caption}</figcaption></figure>`;

function classifierSection(a: ReportAnalysis, specs: Record<string, Spec>): string {
  const correct = a.confusion.reduce((s, row, i) => s + (row[i] ?? 0), 0);
  const total = a.confusion.flat().reduce((s, v) => s + v, 0);
  specs['chart-confusion'] = confusionChart(a.classes, a.confusion);
  specs['chart-per-class'] = perClassChart(a.classes, a.confusion);
  const cards = a.mistakes
    .map((m) => `<figure class="mistake"><img src="${m.image}" alt="${esc(a.classes[m.truth] ?? '')}"><figcaption><span class="pred">${esc(a.classes[m.predicted] ?? String(m.predicted))}</span> ${(100 * m.probability).toFixed(1)}%<br><span class="truth">true: ${esc(a.classes[m.truth] ?? String(m.truth))}</span><br><small>${esc(m.id)}</small></figcaption></figure>`)
    .join('');
  return `<section id="classifier"><h2>The classifier on the test set: ${esc(a.stage)}</h2>
<p>${esc(a.stage)} (the classifier <code>simclr predict</code> and <code>simclr export</code> use) classifies ${correct.toLocaleString('en')} of ${total.toLocaleString('en')} test images correctly (${((100 * correct) / (total || 1)).toFixed(2)}%).</p>
<div class="row">${chart('chart-confusion', 'Confusion matrix: test images by true class (rows) and predicted class (columns); the shade is the share of the row.')}${chart('chart-per-class', 'Top-1 on each class; the dashed line is the accuracy over all classes.')}</div>
<h3 id="mistakes">The most confident mistakes</h3>
<p>The ${a.mistakes.length} wrong predictions made with the highest probability: often a label worth checking, or two classes the model cannot tell apart.</p>
<div class="gallery">${cards || '<p>No mistakes on the test set.</p>'}</div></section>`;
}

function viewsSection(a: ReportAnalysis): string {
  if (!a.views) return '';
  return `<section id="views"><h2>What pretraining sees</h2><div class="row"><img class="views" src="${a.views.image}" alt="SimCLR views of ${a.views.rows} test images">
<p class="aside">Each row: a test image, then two SimCLR views of it, drawn with this run's pretraining augmentations (random crop and resize, flip, colour jitter, grayscale; blur above 32px). Pretraining teaches the encoder that the two views of an image belong together, and apart from the views of the other images in the batch: what survives these changes is what the encoder learns to see.</p></div></section>`;
}

function mapSection(a: ReportAnalysis, specs: Record<string, Spec>): string {
  if ('skipped' in a.map) return `<section id="map"><h2>The encoder's map of the test images</h2><p>Not drawn: ${esc(a.map.skipped)}.</p></section>`;
  const points = a.map.points.map((p) => ({ x: p.x, y: p.y, class: a.classes[p.label] ?? String(p.label), id: p.id }));
  specs['chart-map'] = mapChart(points, a.classes);
  return `<section id="map"><h2>The encoder's map of the test images</h2>
<p>The pretrained encoder's features (learned without labels) of ${points.length.toLocaleString('en')} test images, a seeded sample, laid out in two dimensions with UMAP (seed ${a.map.seed}) and coloured by their true class. Classes that form their own islands are easy to learn from few labels; classes that mix are where the labels matter.</p>
${chart('chart-map', "UMAP of the pretrained encoder's embeddings (cosine geometry of L2-normalised features).")}</section>`;
}

export function reportHtml(input: ReportInput): string {
  const specs: Record<string, Spec> = {};
  const { curves, analysis: a } = input;
  const eff = efficiencyPoints(input.results);
  if (eff) specs['chart-labels'] = labelEfficiencyChart(eff.points, eff.xTitle);
  if (curves.loss.length) specs['chart-loss'] = lossChart(curves.loss);
  if (curves.pretrain.length) specs['chart-pretrain'] = pretrainChart(curves.pretrain);
  if (curves.validation.length) specs['chart-validation'] = validationChart(curves.validation);
  const tags = new Set(input.results.map((r) => r.stage.replace(/^[a-z]+-/, '')));
  const efficiency = eff
    ? chart('chart-labels', 'Top-1 of each model against the share of the labels it was given: test (solid) and validation (dashed).')
    : `<p class="note">The label-efficiency chart (top-1 against the share of labels) appears when the run has several label fractions (this one has ${tags.size}; e.g. <code>simclr pipeline --labels 1%,10%</code>).</p>`;
  const curvesHtml = [
    specs['chart-loss'] ? chart('chart-loss', "Each stage's training loss by epoch: every step (faint) and the mean of each epoch. Pretraining: NT-Xent; the classifiers: cross-entropy; distillation: cross-entropy against the teacher's soft labels.") : '',
    specs['chart-pretrain'] ? chart('chart-pretrain', "Pretraining's contrastive accuracy: how often a view's most similar other view is its partner (and kNN top-1, where monitored).") : '',
    specs['chart-validation'] ? chart('chart-validation', 'Validation top-1 of each classifier stage after the epochs where it was measured (held-out training images, never trained on as labels).') : '',
  ].join('') || '<p class="note">No metrics yet.</p>';
  const pending = `<p class="note">Computed when a pipeline finishes, or with <code>${esc(input.analyseCommand)}</code>.</p>`;
  const staleNote = a && input.stale ? `<p class="stale">This part was computed ${esc(a.written)} and is out of date: ${esc(input.stale)}. Run <code>${esc(input.analyseCommand)}</code> to redo it.</p>` : '';
  const modelSections = a
    ? staleNote + classifierSection(a, specs) + viewsSection(a) + mapSection(a, specs)
    : `<section id="classifier"><h2>The classifier on the test set</h2>${pending}</section><section id="views"><h2>What pretraining sees</h2>${pending}</section><section id="map"><h2>The encoder's map of the test images</h2>${pending}</section>`;
  const libs = chartLibraries();
  const specJson = JSON.stringify(specs).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>simclr-ts report: ${esc(input.run)}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fff}
main{max-width:1080px;margin:0 auto;padding:1.5em 2em 3em}
header{border-bottom:1px solid #ddd;margin-bottom:1em}h1{margin:.2em 0;font-size:1.6em}
h2{margin-top:1.8em;border-bottom:1px solid #eee;padding-bottom:.2em;font-size:1.3em}h3{font-size:1.1em}
nav a{margin-right:1em;color:#3a6ea5;text-decoration:none}nav{margin:.5em 0 1em;font-size:.95em}
.meta{color:#666;font-size:.9em}.note{color:#666;font-style:italic}.stale{background:#fff4d6;border:1px solid #e8c66a;padding:.5em 1em}
table.results{border-collapse:collapse;font-size:.92em}table.results td,table.results th{border:1px solid #ddd;padding:4px 9px;text-align:right}
table.results th{background:#f3f3f3}table.results td:first-child{text-align:left;font-family:ui-monospace,monospace;white-space:nowrap}
figure{margin:0}.chart{margin:1em 0}.chart figcaption{color:#555;font-size:.88em;max-width:680px;margin-top:.3em}
.row{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}.row .chart figcaption{max-width:440px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(118px,1fr));gap:10px}
.mistake{border:1px solid #e3e3e3;border-radius:4px;padding:6px;text-align:center;font-size:.8em;background:#fafafa}
.mistake img{image-rendering:pixelated;max-width:100%}.mistake .pred{color:#c0392b;font-weight:600}.mistake .truth{color:#2d6a2d}.mistake small{color:#888;word-break:break-all}
img.views{image-rendering:pixelated;border:1px solid #ddd;max-width:100%}.aside{max-width:480px}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}code{background:#f3f3f3;padding:0 3px}
</style></head><body><main>
<header><h1>simclr-ts run report</h1><p class="meta">${esc(input.run)} &middot; written ${new Date().toISOString()}</p>
<nav><a href="#results">Results</a><a href="#curves">Training curves</a><a href="#classifier">Test set</a><a href="#mistakes">Mistakes</a><a href="#views">Views</a><a href="#map">Embedding map</a><a href="#config">Configuration</a></nav></header>
<section id="results"><h2>Results</h2><p>Validation: held out of the training images, never trained on as labels (settings are chosen on it). Test: the held-out test set, read once per stage.</p>
${resultsTable(input.results)}
${efficiency}</section>
<section id="curves"><h2>Training curves</h2>${curvesHtml}</section>
${modelSections}
<section id="config"><h2>Configuration</h2><details><summary>config.json</summary><pre>${esc(input.configText ?? '{}')}</pre></details>
<p class="meta">Charts: ${libs.map((l) => `${l.name} ${esc(l.version)} (${esc(l.license)})`).join(', ')}, inlined.</p></section>
</main>
<script type="application/json" id="report-specs">${specJson}</script>
${libs.map((l) => `<script>/* ${l.name} ${l.version}, ${l.license} */\n${l.code}\n</script>`).join('\n')}
<script>
(function () {
  var specs = JSON.parse(document.getElementById('report-specs').textContent);
  var ids = Object.keys(specs);
  Promise.all(ids.map(function (id) { return vegaEmbed('#' + id, specs[id], { actions: false, renderer: 'svg' }); }))
    .then(function () { document.body.setAttribute('data-rendered', String(ids.length)); })
    .catch(function (e) { console.error('report chart: ' + e); document.body.setAttribute('data-render-error', String(e)); });
})();
</script>
</body></html>
`;
}
