// Nothing spreads a data-sized array into a call: kNN, the class count and the report on
// a million labels or metric points.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as t from '../src';
import { RunFolder, classCount, knnClassify } from '../src/train';
import { writeReport } from '../src/run';
import { MAX_STEP_POINTS, chartLibraries } from '../src/report';
import { extent } from '../src/util/extent';
import { tempDir } from './helpers';

const N = 1_000_000;

test('kNN and the class count work on 1,000,000 labels', () => {
  // Labels cycle 0..9; each bank row points at angle 2*pi*label/10, so a query at a class's
  // angle must be classified as that class.
  const labels = Int32Array.from({ length: N }, (_, i) => i % 10);
  assert.equal(classCount({ classes: [], labels }), 10);
  assert.deepEqual(extent(labels), [0, 9]);
  assert.throws(() => Math.max(...labels), RangeError, 'the spread this replaces fails at this size');
  t.tidy(() => {
    const angle = t.tensor(Float64Array.from(labels, (l) => (2 * Math.PI * l) / 10), undefined, { dtype: 'float32' });
    const bank = t.stack([angle.cos(), angle.sin()], 1);
    const qa = t.tensor([3, 7, 0].map((l) => (2 * Math.PI * l) / 10), undefined, { dtype: 'float32' });
    const queries = t.stack([qa.cos(), qa.sin()], 1);
    const predicted = knnClassify({ bank, bankLabels: labels, queries, classes: 10, k: 200 });
    assert.deepEqual([...predicted], [3, 7, 0]);
  });
});

test('the report draws 1,000,000 metric points as a small page', () => {
  const dir = tempDir('simclr-large-report-');
  const run = new RunFolder(dir);
  const lines: string[] = [];
  // 1,000 epochs of 1,000 steps each, as the training loop writes them.
  for (let i = 0; i < N; i++) lines.push(`{"stage":"pretrain","epoch":${1 + Math.floor(i / 1000)},"step":${i + 1},"loss":${(5 - i / N).toFixed(5)},"contrastive_acc":${(i / N).toFixed(5)}}`);
  writeFileSync(run.path('metrics.jsonl'), lines.join('\n') + '\n');
  writeReport(run);
  const html = readFileSync(run.path('report.html'), 'utf8');
  const specs = JSON.parse(/<script type="application\/json" id="report-specs">(.*?)<\/script>/s.exec(html)![1]!) as Record<string, { data: { values: { epoch: number; kind?: string; series?: string }[] } }>;
  const loss = specs['chart-loss']!.data.values;
  const steps = loss.filter((p) => p.kind === 'step');
  assert.ok(steps.length <= MAX_STEP_POINTS + 1 && steps.length >= MAX_STEP_POINTS / 2, `${steps.length} step points drawn`);
  assert.equal(steps[steps.length - 1]!.epoch, 1000, 'the last step is drawn');
  assert.equal(loss.filter((p) => p.kind === 'epoch mean').length, 1000, 'a mean per epoch');
  assert.ok(specs['chart-pretrain']!.data.values.length <= MAX_STEP_POINTS + 1 + 1000);
  // The page is the inlined chart libraries plus little else.
  const libraries = chartLibraries().reduce((n, l) => n + l.code.length, 0);
  assert.ok(html.length - libraries < 300_000, `report is ${html.length} bytes, ${html.length - libraries} besides the libraries`);
  rmSync(dir, { recursive: true, force: true });
});
