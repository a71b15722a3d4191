// Measured figures in the README come from the results files their benchmarks write: every
// results block is what its file renders (npm run docs:results rewrites them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withResults } from '../bench/results-docs';

test("the README's results blocks are what bench/results/*.json render", () => {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  assert.match(readme, /<!-- results:label-selection -->/);
  assert.equal(withResults(readme), readme, 'a results block differs from its file: run npm run docs:results');
});
