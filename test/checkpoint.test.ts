// Checkpoint JSON read as hostile input: every corruption gives an Error naming the file
// and the field, before anything reaches libtorch; a good checkpoint still resumes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as t from '../src';
import { CheckpointError, RunFolder, loadCheckpoint, saveCheckpoint } from '../src/train';
import { tempDir } from './helpers';

function setup(): { run: RunFolder; model: t.nn.Linear; opt: t.SGD; file: string; good: Record<string, unknown> } {
  t.manualSeed(11);
  const run = new RunFolder(tempDir('simclr-ckpt-'));
  const model = new t.nn.Linear(3, 2);
  const opt = new t.SGD(model.namedParameters(), { lr: 0.1, momentum: 0.9 });
  t.tidy(() => model.forward(t.randn([4, 3])).sum().backward());
  opt.step();
  saveCheckpoint(run, 'ck', model, opt, { epoch: 2, batch: 1, step: 7, stage: 'test', config: { lr: 0.1, nested: { a: [1, 2] } } });
  const file = run.path('ck.json');
  return { run, model, opt, file, good: JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> };
}

test('a good checkpoint loads, restoring the counters and the RNG state', () => {
  const { run, model, opt, good } = setup();
  const expected = t.tidy(() => t.randn([5]).toArray());
  t.manualSeed(99);
  const meta = loadCheckpoint(run, 'ck', model, opt, { restoreRng: true });
  assert.deepEqual([meta.epoch, meta.batch, meta.step, meta.stage], [2, 1, 7, 'test']);
  assert.deepEqual(meta.config, good.config);
  assert.deepEqual(t.tidy(() => t.randn([5]).toArray()), expected);
  rmSync(run.dir, { recursive: true });
});

test('corrupted checkpoint JSON gives an Error naming the file and the field, never a crash', () => {
  const { run, model, opt, file, good } = setup();
  const rng = Buffer.from(good.rng as string, 'base64');
  const withRng = (edit: (b: Buffer) => void): string => {
    const b = Buffer.from(rng);
    edit(b);
    return b.toString('base64');
  };
  const cases: [string, RegExp][] = [
    // wrong types, NaN-like strings, huge and negative numbers
    [JSON.stringify({ ...good, epoch: 'NaN' }), /field 'epoch' must be a whole number >= 0, not "NaN"/],
    [JSON.stringify({ ...good, epoch: '2' }), /field 'epoch' must be a whole number >= 0, not "2"/],
    [JSON.stringify(good).replace('"step": 7', '"step": 1e400').replace('"step":7', '"step":1e400'), /field 'step' must be a whole number >= 0, not Infinity/],
    [JSON.stringify({ ...good, step: 2 ** 60 }), /field 'step' must be a whole number >= 0, not 1152921504606847000/],
    [JSON.stringify({ ...good, step: -1 }), /field 'step' .* not -1/],
    [JSON.stringify({ ...good, batch: 1.5 }), /field 'batch' .* not 1.5/],
    [JSON.stringify({ ...good, epoch: [2] }), /field 'epoch' .* not \[2\]/],
    [JSON.stringify({ ...good, stage: 5 }), /field 'stage' must be a string/],
    [JSON.stringify({ ...good, time: 'yesterday' }), /field 'time' must be a date/],
    [JSON.stringify({ ...good, config: null }), /field 'config' must be an object, not null/],
    [JSON.stringify({ ...good, config: 'x'.repeat(100_000) }), /field 'config' must be an object, not "x{10,}…"$/],
    // missing fields
    [JSON.stringify({ ...good, epoch: undefined }), /field 'epoch' is missing/],
    [JSON.stringify({ ...good, rng: undefined }), /field 'rng' is missing/],
    [JSON.stringify({ ...good, batch: undefined, stage: undefined }), /field 'stage' is missing/],
    [JSON.stringify({ ...good, rng: null }), /field 'rng' must be a string of 1 to \d+ characters, not null/],
    // prototype keys, unknown fields, not an object, not JSON
    [JSON.stringify(good).replace(/^\{/, '{"__proto__": {"epoch": 1},'), /field "__proto__" is not a checkpoint field/],
    [JSON.stringify(good).replace(/^\{/, '{"constructor": 1,'), /field "constructor" is not a checkpoint field/],
    [JSON.stringify({ ...good, config: JSON.parse('{"a": {"__proto__": {"x": 1}}}') as object }), /field 'config' holds a "__proto__" key at config.a/],
    [JSON.stringify({ ...good, [`k${'y'.repeat(100_000)}`]: 1 }), /field "kyyy.*…" is not a checkpoint field$/],
    ['[1, 2]', /JSON must be an object, not \[1,2\]/],
    ['{"epoch": ', /JSON does not parse/],
    ['', /JSON does not parse/],
    // the RNG state: not base64, the wrong length, counters out of range
    [JSON.stringify({ ...good, rng: '!!!!' }), /field 'rng' is not base64/],
    [JSON.stringify({ ...good, rng: rng.subarray(0, 100).toString('base64') }), /field 'rng' holds 100 bytes; this libtorch's generator state has \d+/],
    [JSON.stringify({ ...good, rng: Buffer.concat([rng, Buffer.alloc(3)]).toString('base64') }), /field 'rng' must be a string of 1 to \d+ characters/],
    [JSON.stringify({ ...good, rng: withRng((b) => b.writeInt32LE(100000, 8)) }), /field 'rng' is not a valid mt19937 state \(left 100000/],
    [JSON.stringify({ ...good, rng: withRng((b) => b.writeBigUInt64LE(2n ** 63n, 16)) }), /field 'rng' is not a valid mt19937 state/],
    [JSON.stringify({ ...good, rng: withRng((b) => b.writeInt32LE(0, 12)) }), /field 'rng' is not a valid mt19937 state/],
  ];
  const live = t.liveTensors();
  for (const [text, pattern] of cases) {
    writeFileSync(file, text);
    assert.throws(
      () => loadCheckpoint(run, 'ck', model, opt, { restoreRng: true }),
      (e: unknown) => {
        assert.ok(e instanceof CheckpointError, `${String(e)} for ${text.slice(0, 80)}`);
        assert.ok((e as Error).message.startsWith(`${file}: not a usable checkpoint: `), (e as Error).message);
        assert.match((e as Error).message, pattern);
        assert.ok((e as Error).message.length < 400, `message of ${(e as Error).message.length} characters`);
        return true;
      },
      text.slice(0, 80),
    );
  }
  assert.equal(t.liveTensors(), live, 'a refused checkpoint leaves no tensors behind');
  // Still usable after all that.
  writeFileSync(file, JSON.stringify(good));
  assert.equal(loadCheckpoint(run, 'ck', model, opt, { restoreRng: true }).step, 7);
  rmSync(run.dir, { recursive: true });
});

test('checkpoint tensors with foreign names or non-float optimiser state are refused, naming the file', () => {
  const { run, model, opt } = setup();
  const weights = run.path('ck.safetensors');
  const write = (extra: Record<string, t.Tensor>) =>
    t.tidy(() => {
      const { tensors } = t.loadSafetensors(weights);
      t.saveSafetensors(weights, new Map([...tensors, ...Object.entries(extra)]));
    });
  write({ [`junk.${'z'.repeat(1000)}`]: t.zeros([1]) });
  assert.throws(() => loadCheckpoint(run, 'ck', model, opt), (e: unknown) => {
    assert.ok(e instanceof CheckpointError, String(e));
    assert.match((e as Error).message, /ck\.safetensors: not a usable checkpoint: tensor 'junk\.z+…' is not a checkpoint tensor/);
    assert.ok((e as Error).message.length < 400);
    return true;
  });
  rmSync(run.dir, { recursive: true });
  const second = setup();
  const w2 = second.run.path('ck.safetensors');
  t.tidy(() => {
    const { tensors } = t.loadSafetensors(w2);
    const key = [...tensors.keys()].find((k) => k.startsWith('optim.'))!;
    tensors.set(key, t.zeros(tensors.get(key)!.shape, { dtype: 'bool' }));
    t.saveSafetensors(w2, tensors);
  });
  assert.throws(() => loadCheckpoint(second.run, 'ck', second.model, second.opt), /ck\.safetensors: not a usable checkpoint: tensor 'optim\.\S+' is bool; optimiser state is floating point/);
  rmSync(second.run.dir, { recursive: true });
});
