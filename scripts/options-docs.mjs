#!/usr/bin/env node
// Writes docs/cli.md from the tables the parser and `simclr COMMAND --help` use.
// test/cli-options.test.ts fails when the file is out of date.
//   npm run docs:cli          rewrite docs/cli.md (after `npm run build`)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { cliReference } = require(join(root, 'dist/src/cli/docs.js'));
const file = join(root, 'docs', 'cli.md');
let before = '';
try {
  before = readFileSync(file, 'utf8');
} catch {
  // first time: no file yet
}
const after = cliReference();
mkdirSync(dirname(file), { recursive: true });
if (after !== before) writeFileSync(file, after);
process.stderr.write(after === before ? 'docs/cli.md is up to date\n' : 'docs/cli.md rewritten\n');
