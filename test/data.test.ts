// IDX files and stratified label subsets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { readIdx, stratifiedSubset, loadIdxSplit, FASHION_MNIST_DIR } from '../src/data';
import { tempDir } from './helpers';

function idx(dims: number[], data: number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

test('IDX files are read raw or gzipped, and bad ones are refused naming the file', () => {
  const dir = tempDir();
  const raw = join(dir, 'a-idx3-ubyte');
  writeFileSync(raw, idx([2, 1, 2], [1, 2, 3, 4]));
  writeFileSync(`${raw}.gz`, gzipSync(idx([2, 1, 2], [1, 2, 3, 4])));
  for (const f of [raw, `${raw}.gz`]) {
    const a = readIdx(f);
    assert.deepEqual(a.dims, [2, 1, 2]);
    assert.deepEqual([...a.data], [1, 2, 3, 4]);
  }
  const bad = join(dir, 'bad');
  writeFileSync(bad, idx([3], [1, 2]));
  assert.throws(() => readIdx(bad), new RegExp(`${bad}: IDX header promises 3 = 3 bytes but the file holds 2`));
  writeFileSync(bad, Buffer.from('hello world'));
  assert.throws(() => readIdx(bad), /bad: not an unsigned-byte IDX file/);
  rmSync(dir, { recursive: true });
});

test('Fashion-MNIST loads with its official sizes', () => {
  const test = loadIdxSplit(FASHION_MNIST_DIR, 'test');
  assert.equal(test.count, 10000);
  assert.equal(test.height, 28);
  assert.equal(test.images.length, 10000 * 28 * 28);
  assert.ok(test.labels.every((l) => l < 10));
});

test('label subsets are stratified, repeatable by seed, and differ across seeds', () => {
  const labels = Array.from({ length: 1000 }, (_, i) => i % 10);
  const a = stratifiedSubset(labels, 0.1, 1);
  assert.equal(a.length, 100);
  const perClass = new Array(10).fill(0);
  for (const i of a) perClass[labels[i]!]++;
  assert.deepEqual(perClass, new Array(10).fill(10));
  assert.deepEqual(stratifiedSubset(labels, 0.1, 1), a);
  assert.notDeepEqual(stratifiedSubset(labels, 0.1, 2), a);
  assert.deepEqual([...a].sort((x, y) => x - y), a);
  assert.equal(stratifiedSubset(labels, 0.0001, 0).length, 10, 'at least one per class');
  assert.throws(() => stratifiedSubset(labels, 0, 0), /label fraction must be in \(0, 1\]/);
});
