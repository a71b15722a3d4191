// report.html on a small real run (a tiny pipeline over CIFAR-10 images at two label
// fractions): every section is there, the page renders in headless Chromium with no console
// errors and fetches nothing, `simclr report` rebuilds it (the same map for the same seed),
// and the report rewritten after a stage keeps the analysis, saying when it is out of date.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RunFolder } from '../src/train';
import { writeReport } from '../src/run';
import { ANALYSIS_FILE, curves, efficiencyPoints, shareOf, stageOrder, type ReportAnalysis } from '../src/report';
import { DATASETS, tempDir } from './helpers';
import { launchBrowser } from './browser';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const root = tempDir('simclr-report-');
const env = { ...process.env, SIMCLR_CACHE: join(root, 'cache') };
const simclr = (args: string[]) => spawnSync(process.execPath, [MAIN, ...args, '--threads', '1'], { encoding: 'utf8', env });
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const CLASSES = ['airplane', 'cat', 'ship', 'truck'];
function copyImages(split: 'train' | 'test', perClass: number): string {
  const dir = join(root, split);
  for (const c of CLASSES) {
    mkdirSync(join(dir, c), { recursive: true });
    for (const f of readdirSync(join(DATASETS, 'cifar10', split, c)).slice(0, perClass)) copyFileSync(join(DATASETS, 'cifar10', split, c, f), join(dir, c, f));
  }
  return dir;
}

const SECTIONS = ['results', 'curves', 'classifier', 'mistakes', 'views', 'map', 'config'];
const CHARTS = ['chart-labels', 'chart-loss', 'chart-pretrain', 'chart-validation', 'chart-confusion', 'chart-per-class', 'chart-map'];

function specsOf(html: string): Record<string, { data?: { values: Record<string, unknown>[] } }> {
  const m = /<script type="application\/json" id="report-specs">(.*?)<\/script>/s.exec(html);
  assert.ok(m, 'the chart specifications are in the page');
  return JSON.parse(m[1]!);
}

/** Opens a report from disk in headless Chromium; returns what went wrong, the charts drawn, and requests made. */
async function render(file: string, screenshot?: string): Promise<{ problems: string[]; drawn: number; rendered: string | null; requests: string[] }> {
  const browser = await launchBrowser();
  cleanups.push(() => browser.close());
  const page = await browser.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => (m.type() === 'error' || m.type() === 'warn') && problems.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('request', (r) => requests.push(r.url()));
  await page.setViewport({ width: 1100, height: 900 });
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector('body[data-rendered], body[data-render-error]', { timeout: 60_000 });
  const rendered = await page.$eval('body', (b) => b.getAttribute('data-rendered'));
  const drawn = await page.$$eval('.vega svg', (s) => s.length);
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  await browser.close();
  return { problems, drawn, rendered, requests: requests.filter((u) => !u.startsWith('data:') && u !== pathToFileURL(file).href) };
}

test('the pipeline writes a full report that renders in headless Chromium; simclr report rebuilds it', async () => {
  const train = copyImages('train', 60);
  const testDir = copyImages('test', 25);
  const run = join(root, 'run');
  const r = simclr(['pipeline', '--data', train, '--test-data', testDir, '--labels', '20%,50%', '--out', run, '--width', '0.125', '--pretrain-epochs', '2', '--pretrain-batch', '48', '--finetune-epochs', '2', '--supervised-epochs', '2', '--distill-epochs', '1']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /report: distill-(20|50)pct on 100 test images, views, embedding map/);
  const file = join(run, 'report.html');
  const html = readFileSync(file, 'utf8');
  for (const s of SECTIONS) assert.match(html, new RegExp(`<section id="${s}"|<h3 id="${s}"`), `section ${s}`);
  const specs = specsOf(html);
  assert.deepEqual(Object.keys(specs).sort(), [...CHARTS].sort());
  for (const id of CHARTS) assert.match(html, new RegExp(`<div id="${id}" class="vega">`));
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'no outside requests');
  assert.ok(html.length < 3_000_000, `report is ${html.length} bytes`);

  // Label efficiency: the three models at 20% and 50% of the labels, on test and validation.
  const eff = specs['chart-labels']!.data!.values;
  assert.deepEqual([...new Set(eff.map((p) => p.x))].sort(), [20, 50]);
  assert.deepEqual([...new Set(eff.map((p) => p.method))].sort(), ['distilled', 'fine-tuned', 'supervised baseline']);
  assert.equal(eff.length, 12);

  // The analysis: counts over the 100 test images, mistakes by falling confidence, the map of every test image.
  const a = JSON.parse(readFileSync(join(run, ANALYSIS_FILE), 'utf8')) as ReportAnalysis;
  assert.deepEqual(a.classes, CLASSES);
  assert.equal(a.confusion.flat().reduce((x, y) => x + y, 0), 100);
  assert.deepEqual(a.confusion.map((row) => row.reduce((x, y) => x + y, 0)), [25, 25, 25, 25]);
  const wrong = 100 - a.confusion.reduce((s, row, i) => s + row[i]!, 0);
  assert.equal(a.mistakes.length, Math.min(24, wrong));
  for (let i = 1; i < a.mistakes.length; i++) assert.ok(a.mistakes[i - 1]!.probability >= a.mistakes[i]!.probability, 'most confident first');
  for (const m of a.mistakes) {
    assert.notEqual(m.truth, m.predicted);
    assert.match(m.image, /^data:image\/png;base64,/);
    assert.ok(html.includes(m.image), 'the mistake is shown with its image');
  }
  assert.ok(a.views && html.includes(a.views.image));
  assert.ok(!('skipped' in a.map) && a.map.points.length === 100, 'every test image on the map (fewer than 2,000)');
  const top1 = JSON.parse(readFileSync(join(run, 'results.json'), 'utf8')).results.find((x: { stage: string }) => x.stage === a.stage).top1 as number;
  assert.equal((100 * (100 - wrong)) / 100, top1, "the confusion matrix agrees with the stage's test top-1");

  const shot = join(run, 'report.png');
  const seen = await render(file, shot);
  assert.deepEqual(seen.problems, []);
  assert.equal(seen.rendered, String(CHARTS.length));
  assert.equal(seen.drawn, CHARTS.length, 'every chart drawn as SVG');
  assert.deepEqual(seen.requests, [], 'nothing fetched');
  assert.equal(readFileSync(shot).subarray(1, 4).toString(), 'PNG');

  // simclr report elsewhere: the run folder is only read, and the same seed draws the same map.
  const savedAt = statSync(join(run, ANALYSIS_FILE)).mtimeMs;
  const other = join(root, 'elsewhere', 'report.html');
  const rep = simclr(['report', '--model', run, '--out', other]);
  assert.equal(rep.status, 0, rep.stderr);
  assert.match(rep.stdout, /on 100 test images; \d+ confident mistakes shown, a map of 100 test images/);
  assert.equal(statSync(join(run, ANALYSIS_FILE)).mtimeMs, savedAt);
  assert.deepEqual(specsOf(readFileSync(other, 'utf8'))['chart-map'], specs['chart-map']);
  const fine = simclr(['report', '--model', run, '--out', other, '--stage', 'finetune-50pct', '--map-images', '40', '--mistakes', '3']);
  assert.equal(fine.status, 0, fine.stderr);
  const fineHtml = readFileSync(other, 'utf8');
  assert.match(fineHtml, /The classifier on the test set: finetune-50pct/);
  assert.equal(specsOf(fineHtml)['chart-map']!.data!.values.length, 40);
  assert.equal((fineHtml.match(/<figure class="mistake">/g) ?? []).length, Math.min(3, wrong));
  const bad = simclr(['report', '--model', run, '--stage', 'finetune-7pct']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /no 'finetune-7pct' checkpoint \(stages there: .*distill-20pct/);
  assert.match(simclr(['report', '--model', join(root, 'nothing')]).stderr, /not a simclr run folder/);

  // Rewritten after a stage (no model loaded), the report keeps the analysis; a retrained classifier makes it out of date.
  writeReport(new RunFolder(run));
  assert.match(readFileSync(file, 'utf8'), /id="chart-map"/);
  assert.doesNotMatch(readFileSync(file, 'utf8'), /out of date/);
  const later = new Date(Date.now() + 5000);
  utimesSync(join(run, `${a.stage}.safetensors`), later, later);
  writeReport(new RunFolder(run));
  assert.match(readFileSync(file, 'utf8'), new RegExp(`out of date: ${a.stage} was trained again after this analysis\\. Run <code>simclr report --model ${run}</code>`));
  assert.ok(existsSync(file));
});

test('curves by fractional epoch with epoch means; the label-efficiency axis from the label fractions', () => {
  const metrics = [
    ...[1, 2, 3, 4].map((step) => ({ stage: 'pretrain', epoch: step <= 2 ? 1 : 2, step, loss: 10 - step, contrastive_acc: step / 10 })),
    { stage: 'pretrain', epoch: 2, step: 4, knn_top1: 40 },
    { stage: 'finetune-1pct', epoch: 1, step: 1, loss: 2 },
    { stage: 'finetune-1pct', epoch: 1, step: 1, val_top1: 55.5 },
  ];
  const c = curves(metrics);
  assert.deepEqual(c.loss.filter((r) => r.stage === 'pretrain' && r.kind === 'step').map((r) => [r.epoch, r.loss]), [[0.5, 9], [1, 8], [1.5, 7], [2, 6]]);
  assert.deepEqual(c.loss.filter((r) => r.kind === 'epoch mean').map((r) => [r.stage, r.epoch, r.loss]), [['pretrain', 1, 8.5], ['pretrain', 2, 6.5], ['finetune-1pct', 1, 2]]);
  assert.deepEqual(c.pretrain.filter((r) => r.series !== 'contrastive accuracy, per step').map((r) => [r.series, r.epoch, r.value]), [['contrastive accuracy, epoch mean', 1, 15], ['contrastive accuracy, epoch mean', 2, 35], ['kNN top-1 on the test set', 2, 40]]);
  assert.deepEqual(c.validation, [{ stage: 'finetune-1pct', epoch: 1, top1: 55.5 }]);

  assert.deepEqual(['1pct', '12.5pct', '0.1', '1', '25-per-class'].map(shareOf), [1, 12.5, 10, 100, null]);
  const row = (stage: string, labeled: number) => ({ stage, top1: 50, top5: 90, labeled, epochs: 1, lr: 0.1 });
  assert.equal(efficiencyPoints([row('finetune-1pct', 10)]), null, 'one fraction: no chart');
  assert.equal(efficiencyPoints([row('finetune-1pct', 10), row('finetune-10pct', 100)])!.xTitle, 'share of the labels used (%, log scale)');
  const mixed = efficiencyPoints([row('finetune-1pct', 10), row('finetune-25-per-class', 250)])!;
  assert.equal(mixed.xTitle, 'labeled images (log scale)');
  assert.deepEqual(mixed.points.map((p) => p.x), [10, 250]);
  assert.deepEqual(stageOrder(['distill-10pct', 'finetune-1pct', 'pretrain', 'supervised-10pct', 'distill-1pct', 'supervised-1pct']), ['pretrain', 'supervised-1pct', 'supervised-10pct', 'finetune-1pct', 'distill-1pct', 'distill-10pct']);
});
