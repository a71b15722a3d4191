// Measured figures in the README and docs/ come from the results files their benchmarks
// write: every results block is what its file renders (npm run docs:results rewrites them),
// and every block has a file behind it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { docPages, withResults } from '../bench/results-docs';

const root = join(__dirname, '..', '..');
const pages = docPages().map((p) => relative(root, p));

test('every results block in the README and docs/ is what bench/results/*.json render', () => {
  let blocks = 0;
  for (const page of pages) {
    const text = readFileSync(join(root, page), 'utf8');
    blocks += (text.match(/<!-- results:[a-z-]+ -->/g) ?? []).length;
    assert.equal(withResults(text), text, `${page}: a results block differs from its file: run npm run docs:results ${page}`);
    assert.doesNotMatch(text, /\(not measured yet/, `${page}: a results block has no results file behind it`);
  }
  assert.ok(blocks >= 15, `${blocks} results blocks found`);
});

test('the README quotes its headline, the demo, the budget and the summary from results files; docs/benchmarks.md every benchmark', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  for (const name of ['demo-headline', 'demo-seeds', 'budget', 'summary']) assert.match(readme, new RegExp(`<!-- results:${name} -->\\n.+`), `README block ${name}`);
  const bench = readFileSync(join(root, 'docs', 'benchmarks.md'), 'utf8');
  for (const name of ['inference', 'pretrain-step', 'step', 'overhead', 'memory', 'data', 'fuzz', 'serve', 'scale', 'budget', 'demo-quick', 'demo-seeds', 'claims', 'label-selection', 'select-speed']) {
    assert.match(bench, new RegExp(`<!-- results:${name} -->`), `docs/benchmarks.md block ${name}`);
  }
  assert.ok(readme.split('\n').length <= 300, 'the README stays under 300 lines');
});
