// Nothing spreads a data-sized array into a call: kNN, the class count and the report on
// a million labels or metric points.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as t from '../src';
import { RunFolder, classCount, knnClassify } from '../src/train';
import { writeReport } from '../src/run';
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
  for (let i = 0; i < N; i++) lines.push(`{"stage":"pretrain","step":${i},"loss":${(5 - i / N).toFixed(5)},"contrastive_acc":${(i / N).toFixed(5)}}`);
  writeFileSync(run.path('metrics.jsonl'), lines.join('\n') + '\n');
  writeReport(run);
  const html = readFileSync(run.path('report.html'), 'utf8');
  assert.match(html, /<svg/);
  assert.match(html, /step 0<\/text>/);
  assert.match(html, /999999<\/text>/, 'the last step is on the axis');
  assert.ok(html.length < 1_000_000, `report is ${html.length} bytes`);
  rmSync(dir, { recursive: true, force: true });
});
