// safetensors: round trips with PyTorch, and hostile files rejected cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as t from '../src';
import { assertValues, reference, tempDir } from './helpers';

test('our files round-trip through our reader, with every dtype and metadata', () =>
  t.tidy(() => {
    const dir = tempDir();
    const file = join(dir, 'a.safetensors');
    const tensors = {
      f32: t.tensor([[1.5, -2], [3, 4]]),
      f64: t.tensor([Math.PI], undefined, { dtype: 'float64' }),
      bf16: t.tensor([1.5, -0.25], undefined, { dtype: 'bfloat16' }),
      f16: t.tensor([0.5, 2048], undefined, { dtype: 'float16' }),
      i64: t.tensor([-(2 ** 40), 3], undefined, { dtype: 'int64' }),
      i32: t.tensor([7], undefined, { dtype: 'int32' }),
      u8: t.tensor(new Uint8Array([0, 128, 255])),
      flag: t.tensor([1, 0, 1], undefined, { dtype: 'bool' }),
      scalar: t.full([], 9),
      empty: t.zeros([0, 4]),
      strided: t.tensor([[1, 2], [3, 4]]).transpose(0, 1),
    };
    t.saveSafetensors(file, tensors, { note: 'hello' });
    const { tensors: back, metadata } = t.loadSafetensors(file);
    assert.deepEqual(metadata, { note: 'hello' });
    for (const [k, v] of Object.entries(tensors)) {
      const got = back.get(k)!;
      assert.equal(got.dtype, v.dtype, k);
      assert.deepEqual(got.shape, v.shape, k);
      assert.deepEqual(got.toArray(), v.toArray(), k);
    }
    // data section is 8-byte aligned
    const headerLen = Number(readFileSync(file).readBigUInt64LE(0));
    assert.equal((8 + headerLen) % 8, 0);
    for (const v of back.values()) v.dispose();
    rmSync(dir, { recursive: true });
  }));

test('PyTorch reads our files and we read its files', () =>
  t.tidy(() => {
    const out = reference('roundtrip', {
      a: t.tensor([[1, 2, 3]]),
      b: t.tensor([-1.25], undefined, { dtype: 'float64' }),
      c: t.tensor([5, -6], undefined, { dtype: 'int64' }),
      d: t.tensor([0.5, 3], undefined, { dtype: 'bfloat16' }),
      e: t.tensor([1, 0], undefined, { dtype: 'bool' }),
      f: t.tensor(new Uint8Array([100])),
    });
    assertValues(out.get('a')!, [2, 4, 6]);
    assertValues(out.get('b')!, [-2.5]);
    assert.deepEqual(out.get('c')!.toArray(), [10, -12]);
    assert.equal(out.get('d')!.dtype, 'bfloat16');
    assertValues(out.get('d')!, [1, 6]);
    assert.deepEqual(out.get('e')!.toArray(), [0, 1]);
    assert.deepEqual(out.get('f')!.toArray(), [200]);
    assertValues(out.get('py_f32')!, Array.from({ length: 12 }, (_, i) => Math.fround(i / 7)), 1e-7);
    assertValues(out.get('py_bf16')!, [1.5, -2.25, 3]);
    assert.deepEqual(out.get('py_i64')!.toArray(), [-(2 ** 40), 7]);
    assert.deepEqual(out.get('py_empty')!.shape, [0, 3]);
  }));

function header(obj: object): Buffer {
  const json = Buffer.from(JSON.stringify(obj));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json]);
}

test('crafted headers are rejected with a message naming the file', () => {
  const dir = tempDir();
  const file = join(dir, 'bad.safetensors');
  const cases: [Buffer, RegExp][] = [
    [Buffer.alloc(3), /fewer than the 8-byte header length/],
    [Buffer.from([255, 255, 255, 255, 255, 255, 255, 255]), /exceeds the limit/],
    [Buffer.concat([Buffer.from([16, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{}')]), /runs past the end/],
    [Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('[]')]), /not a JSON object/],
    [Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([0xff, 0xfe])]), /not UTF-8 JSON/],
    [Buffer.concat([header({ x: { dtype: 'F32', shape: [1e15, 1e15], data_offsets: [0, 4] } }), Buffer.alloc(4)]), /= \d+ bytes, but its range holds 4/],
    [header({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }), /outside the 0-byte data section/],
    [header({ x: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }), /unsupported dtype "C64"/],
    [header({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }), /invalid shape/],
    [header({ x: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }), /spans bytes 4..0/],
    [header({ x: { dtype: 'F32', shape: [1], data_offsets: [0] } }), /invalid data_offsets/],
    [header({ __metadata__: { a: 1 } }), /__metadata__.a must be a string/],
    [Buffer.concat([header({ x: { dtype: 'U8', shape: [1], data_offsets: [0, 1] }, y: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }), Buffer.alloc(1)]), /overlap or gap/],
    [Buffer.concat([header({ x: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }), Buffer.alloc(5)]), /the tensors cover 1/],
  ];
  for (const [bytes, pattern] of cases) {
    writeFileSync(file, bytes);
    assert.throws(() => t.loadSafetensors(file), (e: unknown) => {
      assert.ok(e instanceof t.SafetensorsError, String(e));
      assert.ok((e as Error).message.startsWith(`${file}: not a valid safetensors file`), (e as Error).message);
      assert.match((e as Error).message, pattern);
      return true;
    });
  }
  assert.throws(() => t.loadSafetensors(join(dir, 'missing.safetensors')), /missing.safetensors: cannot open \(ENOENT\)/);
  rmSync(dir, { recursive: true });
});

test('thousands of mutated files (truncated, flipped bytes, huge sizes) are each rejected cleanly or read consistently', () => {
  const dir = tempDir();
  const good = join(dir, 'good.safetensors');
  t.tidy(() =>
    t.saveSafetensors(good, {
      weight: t.randn([3, 4]),
      bias: t.randn([4], { dtype: 'float64' }),
      idx: t.randint(0, 9, [5]),
      img: t.tensor(new Uint8Array([1, 2, 3, 4, 5, 6])),
    }),
  );
  const base = readFileSync(good);
  const headerEnd = 8 + Number(base.readBigUInt64LE(0));
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const file = join(dir, 'mutant.safetensors');
  let rejected = 0;
  let read = 0;
  const N = 3000;
  const start = t.liveTensors();
  for (let i = 0; i < N; i++) {
    let bytes = Buffer.from(base);
    const kind = i % 5;
    if (kind === 0) bytes = bytes.subarray(0, rnd(bytes.length)); // truncated
    if (kind === 1) for (let k = 0; k < 1 + rnd(4); k++) bytes[rnd(headerEnd)] = rnd(256); // header bytes flipped
    if (kind === 2) bytes[rnd(bytes.length)] ^= 1 << rnd(8); // any bit flipped
    if (kind === 3) bytes.writeBigUInt64LE(BigInt(rnd(2 ** 31)) * BigInt(1 + rnd(2 ** 31)), 0); // huge header length
    if (kind === 4) {
      // numbers in the header replaced by huge ones
      const text = bytes.subarray(8, headerEnd).toString('latin1').replace(/\d+/g, (m) => (rnd(3) === 0 ? String(2 ** (20 + rnd(44))) : m));
      const json = Buffer.from(text, 'latin1');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      bytes = Buffer.concat([len, json, bytes.subarray(headerEnd)]);
    }
    writeFileSync(file, bytes);
    try {
      const { tensors } = t.loadSafetensors(file);
      // A mutation that leaves a valid file (a flipped data bit) must read consistently.
      let total = 0;
      for (const v of tensors.values()) {
        total += v.bytes().length;
        v.dispose();
      }
      assert.ok(total <= bytes.length, 'never more data than the file holds');
      assert.ok(kind !== 0 && kind !== 3, `mutant ${i} (truncated or huge header length) was accepted`);
      read++;
    } catch (e) {
      assert.ok(e instanceof t.SafetensorsError, `mutant ${i} (kind ${kind}) threw ${String(e)}`);
      assert.ok((e as Error).message.includes(file));
      rejected++;
    }
  }
  assert.equal(rejected + read, N);
  assert.ok(rejected > N / 2, `only ${rejected} of ${N} rejected`);
  assert.equal(t.liveTensors(), start, 'rejected files leave no tensors behind');
  rmSync(dir, { recursive: true });
});

/** A header from JSON text as written (an object literal cannot hold an own "__proto__" key). */
function rawHeader(json: string): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json)]);
}

test('dtypes and names that are Object.prototype members are plain unknown dtypes and plain names', () => {
  const dir = tempDir();
  const file = join(dir, 'proto.safetensors');
  for (const dtype of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
    writeFileSync(file, Buffer.concat([header({ x: { dtype, shape: [1], data_offsets: [0, 4] } }), Buffer.alloc(4)]));
    assert.throws(() => t.loadSafetensors(file), (e: unknown) => {
      assert.ok(e instanceof t.SafetensorsError, String(e));
      assert.equal((e as Error).message, `${file}: not a valid safetensors file: tensor 'x' has unsupported dtype ${JSON.stringify(dtype)}`);
      return true;
    });
  }
  // Field names are looked up as own properties only: an entry without a dtype of its own is refused.
  writeFileSync(file, Buffer.concat([rawHeader('{"x":{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}}'), Buffer.alloc(4)]));
  assert.throws(() => t.loadSafetensors(file), /tensor 'x' has unsupported dtype undefined/);
  // A tensor (and a metadata key) named __proto__ round-trip as ordinary names.
  t.tidy(() => {
    t.saveSafetensors(file, new Map([['__proto__', t.tensor([1, 2])], ['constructor', t.tensor([3])]]), { __proto__: 'kept' } as Record<string, string>);
  });
  const back = t.loadSafetensors(file);
  assert.deepEqual([...back.tensors.keys()].sort(), ['__proto__', 'constructor']);
  assert.deepEqual(back.tensors.get('__proto__')!.toArray(), [1, 2]);
  assert.equal(Object.getPrototypeOf(back.metadata), Object.prototype);
  for (const v of back.tensors.values()) v.dispose();
  writeFileSync(file, Buffer.concat([rawHeader('{"__proto__":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"__metadata__":{"__proto__":"x"}}'), Buffer.from([7, 9])]));
  const read = t.loadSafetensors(file);
  assert.deepEqual(read.tensors.get('__proto__')!.toArray(), [7, 9]);
  assert.ok(Object.hasOwn(read.metadata, '__proto__') && read.metadata['__proto__'] === 'x');
  read.tensors.get('__proto__')!.dispose();
  rmSync(dir, { recursive: true });
});

test('values quoted in errors are cut to a bounded length', () => {
  const dir = tempDir();
  const file = join(dir, 'long.safetensors');
  const long = 'A'.repeat(100_000);
  const cases: object[] = [
    { x: { dtype: long, shape: [1], data_offsets: [0, 4] } },
    { [long]: { dtype: 'F32', shape: [1], data_offsets: [0, 8] } },
    { x: { dtype: 'F32', shape: Array.from({ length: 20_000 }, () => 1), data_offsets: [0, 4] } },
    { x: { dtype: 'F32', shape: [1], data_offsets: [long, 4] } },
    { __metadata__: { [long]: 5 } },
    { __metadata__: { a: [long] } },
  ];
  for (const obj of cases) {
    writeFileSync(file, Buffer.concat([header(obj), Buffer.alloc(4)]));
    assert.throws(() => t.loadSafetensors(file), (e: unknown) => {
      assert.ok(e instanceof t.SafetensorsError, String(e));
      const detail = (e as Error).message.slice(`${file}: not a valid safetensors file: `.length);
      assert.ok(detail.length < 250, `${detail.length} characters: ${detail.slice(0, 300)}`);
      assert.match(detail, /(AAAA|1,)…/);
      return true;
    });
  }
  rmSync(dir, { recursive: true });
});
