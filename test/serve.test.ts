// simclr serve on loopback: POST /predict answers a PNG with the top-5 that `simclr predict`
// gives, multipart files each with theirs, bad input with a 4xx JSON error (and the server
// goes on serving), GET / with the page, GET /healthz; the CLI starts and stops cleanly.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { predictImages } from '../src/run';
import { startServer, type RunningServer } from '../src/serve';
import { Batcher } from '../src/serve/batcher';
import { DATASETS, tempDir } from './helpers';
import { makeRun } from './export-fixture';
import { listenError } from '../src/cli/serve';
import { UsageError } from '../src/cli/options';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const root = tempDir('simclr-serve-');
const classes = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog'];
const { run } = makeRun(join(root, 'run'), { encoder: { depth: 18, width: 0.25, cifarStem: true, inChannels: 3 }, imageSize: 32, classes, stage: 'distill-1pct' });
const images = ['cat', 'ship', 'frog'].map((c) => join(DATASETS, 'cifar10', 'test', c, readdirSync(join(DATASETS, 'cifar10', 'test', c))[0]!));
let server: RunningServer;
after(() => server?.close());

type Body = NonNullable<Parameters<typeof fetch>[1]>['body'];
async function post(path: string, body: Body, type?: string): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', body, headers: type ? { 'content-type': type } : {} });
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text), headers: res.headers };
}

test('POST /predict with a PNG answers JSON top-5 with the probabilities simclr predict gives', async () => {
  server = await startServer({ run, port: 0, host: '127.0.0.1', maxBytes: 64 * 1024 });
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const expected = await predictImages({ run, files: images });
  for (const [i, file] of images.entries()) {
    const r = await post('/predict', readFileSync(file), 'image/png');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.match(r.headers.get('content-type')!, /application\/json/);
    assert.equal(r.json.stage, 'distill-1pct');
    const preds = r.json.predictions as { class: string; probability: number }[];
    assert.equal(preds.length, 5);
    for (let j = 1; j < preds.length; j++) assert.ok(preds[j - 1]!.probability >= preds[j]!.probability, 'most probable first');
    assert.ok(preds.every((p) => classes.includes(p.class) && p.probability >= 0 && p.probability <= 1));
    assert.ok(preds.reduce((a, p) => a + p.probability, 0) <= 1 + 1e-6);
    assert.equal(preds[0]!.class, expected.predictions[i]!.class);
    assert.ok(Math.abs(preds[0]!.probability - expected.predictions[i]!.probability) < 1e-4);
  }
  // ?top=2, and application/octet-stream is an image body too
  const two = await post('/predict?top=2', readFileSync(images[0]!), 'application/octet-stream');
  assert.equal(two.status, 200);
  assert.equal(two.json.predictions.length, 2);
});

test('multipart/form-data: each file gets its own top-k; a bad file gets its own error', async () => {
  const form = new FormData();
  form.append('a', new Blob([readFileSync(images[0]!)], { type: 'image/png' }), 'cat.png');
  form.append('b', new Blob([readFileSync(images[1]!)], { type: 'image/png' }), 'ship.png');
  form.append('c', new Blob([Buffer.from('not an image at all')], { type: 'text/plain' }), 'notes.txt');
  const r = await post('/predict', form);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.deepEqual(r.json.results.map((x: { file: string }) => x.file), ['cat.png', 'ship.png', 'notes.txt']);
  assert.equal(r.json.results[0].predictions.length, 5);
  assert.match(r.json.results[2].error, /notes\.txt: not a JPEG, PNG or WebP image/);
  const single = await post('/predict', readFileSync(images[0]!), 'image/png');
  assert.deepEqual(r.json.results[0].predictions, single.json.predictions);
});

test('bad input gets a 4xx JSON error and the server keeps serving', async () => {
  const cases: [string, () => Promise<{ status: number; json: any }>, number, RegExp][] = [
    ['a text body', () => post('/predict', 'hello, is this a cat?', 'text/plain'), 415, /content type 'text\/plain' is not an image/],
    ['no content type', () => post('/predict', new Uint8Array([1, 2, 3])), 415, /not an image/],
    ['a GIF (not a format served)', () => post('/predict', Buffer.from('GIF89a but not really'), 'image/gif'), 415, /not a JPEG, PNG or WebP image/],
    ['PNG bytes cut after the signature', () => post('/predict', readFileSync(images[0]!).subarray(0, 12), 'image/png'), 400, /cannot be read as an image|cannot be decoded/],
    ['an empty body', () => post('/predict', new Uint8Array(0), 'image/png'), 400, /empty/],
    ['too large', () => post('/predict', new Uint8Array(65 * 1024), 'image/png'), 413, /65536/],
    ['a bad ?top', () => post('/predict?top=zero', readFileSync(images[0]!), 'image/png'), 400, /top must be a whole number/],
    ['a multipart body with no files', () => post('/predict', (() => { const f = new FormData(); f.append('x', 'y'); return f; })()), 400, /no files/],
    ['an unknown route', async () => { const res = await fetch(`${server.url}/nope`); return { status: res.status, json: await res.json() }; }, 404, /no such route/],
    ['GET /predict', async () => { const res = await fetch(`${server.url}/predict`); return { status: res.status, json: await res.json() }; }, 405, /POST it/],
  ];
  for (const [what, send, status, message] of cases) {
    const r = await send();
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.json)}`);
    assert.match(r.json.error, message, what);
  }
  const ok = await post('/predict', readFileSync(images[2]!), 'image/png');
  assert.equal(ok.status, 200);
  // Concurrent requests are answered, in batches.
  const before = server.batcher.batchSizes.length;
  const many = await Promise.all(Array.from({ length: 24 }, (_, i) => post('/predict', readFileSync(images[i % 3]!), 'image/png')));
  assert.ok(many.every((m) => m.status === 200));
  const sizes = server.batcher.batchSizes.slice(before);
  assert.equal(sizes.reduce((a, b) => a + b, 0), 24);
});

test('the batcher runs inputs submitted in one turn as one forward pass, up to maxBatch, fairly across requests', async () => {
  // Deterministic, unlike counting the server's passes, which depends on when decodes finish.
  const batcher = new Batcher<number, number>((xs) => xs.map((x) => x * 2), 10);
  const out = await Promise.all(Array.from({ length: 24 }, (_, i) => batcher.submit(i)));
  assert.deepEqual(out, Array.from({ length: 24 }, (_, i) => 2 * i));
  assert.deepEqual(batcher.batchSizes, [10, 10, 4]);
  const failing = new Batcher<number, number>(() => {
    throw new Error('model failed');
  });
  await assert.rejects(Promise.all([failing.submit(1), failing.submit(2)]), /model failed/);
  // Batches take the waiting inputs round-robin across their requests: a request of many
  // images does not hold back a one-image request that came after it.
  const seen: number[][] = [];
  const fair = new Batcher<number, number>((xs) => (seen.push(xs), xs), 4);
  const big = { request: 'big' };
  const small = { request: 'small' };
  await Promise.all([...[1, 2, 3, 4, 5, 6].map((x) => fair.submit(x, big)), fair.submit(100, small)]);
  assert.deepEqual(seen, [
    [1, 100, 2, 3],
    [4, 5, 6],
  ]);
});

/** Sends a raw request (head, then body chunks; `end`: close the writing side after) and resolves to the first response's status and JSON body. */
function raw(head: string, chunks: (string | Buffer)[], end: boolean): Promise<{ status: number; json: any }> {
  const { port, hostname } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), hostname, () => {
      sock.write(head);
      for (const c of chunks) sock.write(c);
      if (end) sock.end();
    });
    let text = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer within 10 s (got ${JSON.stringify(text.slice(0, 200))})`));
    }, 10_000);
    sock.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d+)[^]*?\r\ncontent-length: (\d+)[^]*?\r\n\r\n/i.exec(text);
      if (m && text.length >= m[0].length + Number(m[2])) {
        clearTimeout(timer);
        sock.destroy();
        resolve({ status: Number(m[1]), json: JSON.parse(text.slice(m[0].length, m[0].length + Number(m[2]))) });
      }
    });
    sock.on('error', () => {});
  });
}

test('malformed or oversized multipart bodies: a 4xx as soon as the body shows it, and the server keeps serving', async () => {
  const part = (name: string) => `--XX\r\ncontent-disposition: form-data; name="f"; filename="${name}"\r\ncontent-type: image/png\r\n\r\n`;
  const head = (extra: string) => `POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; boundary=XX\r\n${extra}\r\n`;
  // A body that ends inside a file (this crashed the server: busboy errors the file's stream).
  const cut = part('a.png') + 'abcdefgh';
  const r1 = await raw(head(`content-length: ${cut.length}\r\n`), [cut], false);
  assert.equal(r1.status, 400, JSON.stringify(r1.json));
  assert.match(r1.json.error, /Unexpected end of form/);
  // The connection cut inside a file.
  await raw(head('transfer-encoding: chunked\r\n'), [`${Buffer.byteLength(cut).toString(16)}\r\n${cut}\r\n`], true).catch(() => null);
  // A file over --max-bytes (64 KiB here), the body still streaming: answered before it ends.
  const big = Buffer.alloc(70 * 1024, 1);
  const r2 = await raw(head('transfer-encoding: chunked\r\n'), [`${(part('big.png').length + big.length).toString(16)}\r\n`, part('big.png'), big, '\r\n'], false);
  assert.equal(r2.status, 413, JSON.stringify(r2.json));
  assert.match(r2.json.error, /big\.png is over 65536 bytes/);
  // A declared body larger than the most files x --max-bytes: refused before it is read.
  const r3 = await raw(head('content-length: 100000000000\r\n'), [], false);
  assert.equal(r3.status, 413, JSON.stringify(r3.json));
  assert.match(r3.json.error, /the most this server takes/);
  // Endless text fields: a limit, not a body read to its end.
  const fields = Array.from({ length: 150 }, (_, i) => `--XX\r\ncontent-disposition: form-data; name="x${i}"\r\n\r\nv\r\n`).join('');
  const r4 = await raw(head('transfer-encoding: chunked\r\n'), [`${fields.length.toString(16)}\r\n${fields}\r\n`], false);
  assert.equal(r4.status, 413, JSON.stringify(r4.json));
  // A request target that is no URL: 400, not 500.
  const r5 = await raw('GET http://[ HTTP/1.1\r\nhost: x\r\n\r\n', [], false);
  assert.equal(r5.status, 400, JSON.stringify(r5.json));
  const ok = await post('/predict', readFileSync(images[0]!), 'image/png');
  assert.equal(ok.status, 200, 'still serving');
});

test('GET / is the page and GET /healthz says what is served', async () => {
  const page = await fetch(`${server.url}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type')!, /text\/html/);
  const html = await page.text();
  assert.match(html, /<input id="file" type="file" accept="image\/\*" multiple/);
  assert.match(html, /id="prediction"/);
  assert.match(html, /fetch\('predict\?top='/);
  const health = await (await fetch(`${server.url}/healthz`)).json();
  assert.deepEqual(health, { status: 'ok', model: 'run', stage: 'distill-1pct', classes, imageSize: 32, channels: 3 });
  assert.ok(!html.includes(root), "the page does not show the run's path on this machine");
});

test('bounds: a request past the queue gets 503 with Retry-After, an image over the pixel limit 413, and no answer names a local path', async () => {
  const bounded = await startServer({ run, port: 0, host: '127.0.0.1', limits: { maxQueue: 2, maxPixels: 1_000_000 } });
  try {
    const form = new FormData();
    for (const [i, f] of images.entries()) form.append(`f${i}`, new Blob([readFileSync(f)], { type: 'image/png' }), `${i}.png`);
    const res = await fetch(`${bounded.url}/predict`, { method: 'POST', body: form });
    const text = await res.text();
    assert.equal(res.status, 503, text);
    assert.equal(res.headers.get('retry-after'), '1');
    assert.match(JSON.parse(text).error, /the server is busy .* at most 2\): try again shortly/);
    // 2,000 x 1,000 pixels in a few kilobytes: refused from its header, before any decoding.
    const big = await (await import('sharp')).default({ create: { width: 2000, height: 1000, channels: 3, background: '#808080' } }).png().toBuffer();
    const huge = await fetch(`${bounded.url}/predict`, { method: 'POST', body: big, headers: { 'content-type': 'image/png' } });
    const hugeText = await huge.text();
    assert.equal(huge.status, 413, hugeText);
    assert.match(JSON.parse(hugeText).error, /2\.0 megapixels, over the 1 this server decodes/);
    // The queue was given back: the next request is served, and says the run by its name only.
    const ok = await fetch(`${bounded.url}/predict`, { method: 'POST', body: readFileSync(images[0]!), headers: { 'content-type': 'image/png' } });
    const okText = await ok.text();
    assert.equal(ok.status, 200, okText);
    assert.equal(JSON.parse(okText).model, 'run');
    for (const t of [text, hugeText, okText]) assert.ok(!t.includes(root), t);
  } finally {
    await bounded.close();
  }
});

test('simclr serve --port 0 prints its address, answers, and closes on SIGTERM', async () => {
  const child = spawn(process.execPath, [MAIN, 'serve', '--model', run, '--port', '0', '--threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  const r = await fetch(`${url}/predict`, { method: 'POST', body: readFileSync(images[0]!), headers: { 'content-type': 'image/png' } });
  assert.equal(r.status, 200);
  assert.equal(((await r.json()) as { predictions: unknown[] }).predictions.length, 5);
  const code = await new Promise<number | null>((resolve) => {
    child.on('exit', resolve);
    child.kill('SIGTERM');
  });
  assert.equal(code, 0, err);
  assert.match(out, /server closed/);
});

test('serve: a port the user may not listen on (below 1024, not root) is a usage error saying why', () => {
  const denied = Object.assign(new Error('listen EACCES: permission denied 127.0.0.1:80'), { code: 'EACCES' });
  const e = listenError(denied, 80, '127.0.0.1');
  assert.ok(e instanceof UsageError);
  assert.match((e as Error).message, /--port 80: ports below 1024 need root/);
  assert.ok(listenError(Object.assign(new Error('x'), { code: 'EADDRINUSE' }), 8080, '127.0.0.1') instanceof UsageError);
  const other = new Error('something else');
  assert.equal(listenError(other, 8080, '127.0.0.1'), other);
});
