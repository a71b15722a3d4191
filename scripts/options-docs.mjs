#!/usr/bin/env node
// Writes each command's option list into README.md between its markers
// (<!-- options:NAME --> ... <!-- /options:NAME -->), from the tables the parser and
// `simclr NAME --help` use. test/cli-options.test.ts fails when the README is out of date.
//   node scripts/options-docs.mjs          rewrite README.md (after `npm run build`)
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { readmeWithOptions } = require(join(root, 'dist/src/cli/docs.js'));
const file = join(root, 'README.md');
const before = readFileSync(file, 'utf8');
const after = readmeWithOptions(before);
if (after !== before) writeFileSync(file, after);
process.stderr.write(after === before ? 'README.md option lists are up to date\n' : 'README.md option lists rewritten\n');
