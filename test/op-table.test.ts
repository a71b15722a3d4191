// The op table exists once, in native/ops.cc: the TypeScript declarations of the native
// ops (NativeAddon in src/torch/native.ts) are held to its parameter lists here, so a
// changed op fails this test until its declaration follows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as t from '../src';

/** Top-level comma split (types may hold commas inside <...>, (...), [...], {...}). */
function splitParams(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if ('<([{'.includes(ch)) depth++;
    if ('>)]}'.includes(ch)) depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** name -> [param, optional][] from the NativeAddon interface's source. */
function declarations(): Map<string, [string, boolean][]> {
  const src = readFileSync(join(__dirname, '..', '..', 'src', 'torch', 'native.ts'), 'utf8');
  const start = src.indexOf('export interface NativeAddon');
  const body = src.slice(start, src.indexOf('\n}\n', start));
  const out = new Map<string, [string, boolean][]>();
  for (const m of body.matchAll(/^ {2}(\w+)\((.*)\):/gm)) {
    out.set(
      m[1]!,
      splitParams(m[2]!).map((p): [string, boolean] => {
        const [name, type = ''] = [p.slice(0, p.indexOf(':')), p.slice(p.indexOf(':') + 1)];
        return [name.replace('?', '').trim(), name.includes('?') || /\bOpt</.test(type)];
      }),
    );
  }
  return out;
}

test('every native op is declared in TypeScript with the op table\'s parameters, and nothing else is', () => {
  const table = (t.native as unknown as { opParams: Record<string, string> }).opParams;
  const ops = Object.entries(table);
  assert.ok(ops.length > 100, `the addon lists ${ops.length} ops`);
  const declared = declarations();
  for (const [name, params] of ops) {
    const expected = params.split(',').map((p) => p.trim()).filter(Boolean).map((p): [string, boolean] => [p.replace('?', ''), p.endsWith('?')]);
    assert.ok(declared.has(name), `op '${name}' has no declaration in NativeAddon`);
    assert.deepEqual(declared.get(name), expected, `op '${name}': the declaration's parameters (name, optional) differ from the op table's "${params}"`);
  }
  const extra = [...declared.keys()].filter((name) => !Object.hasOwn(table, name) && typeof (t.native as unknown as Record<string, unknown>)[name] !== 'function');
  assert.deepEqual(extra, [], 'declared ops the addon does not have');
});
