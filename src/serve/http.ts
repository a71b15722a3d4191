// `simclr serve`: an HTTP server (node:http) around a run's classifier.
//   POST /predict   an image as the body (image/*, application/octet-stream), or
//                   multipart/form-data with one or more image files -> JSON top-k
//   GET  /          a page that classifies images dropped on it or chosen
//   GET  /healthz   {"status":"ok", model, stage, classes}
// Bad input (not an image, too large, another content type) gets a 4xx and a JSON
// {"error": ...}; the server goes on serving.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import busboy from 'busboy';
import { Batcher } from './batcher';
import { ServedModel, type ClassProbability } from './model';
import { servePage } from './page';
import { Admission, Gate, SERVE_LIMITS, headerPixels, imageFormat, type ServeLimits } from './limits';
import { basename, resolve } from 'node:path';

export interface ServeOptions {
  run: string;
  stage?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (this machine only). */
  host?: string;
  /** Largest image accepted, in bytes. Default 10 MiB. */
  maxBytes?: number;
  /** Most files in one multipart request. Default 64. */
  maxFiles?: number;
  /** Classes returned per image unless ?top= says otherwise. Default 5. */
  top?: number;
  /** Most images per forward pass. Default 32. */
  maxBatch?: number;
  /** Bounds on connections, queue, bytes, pixels and time (src/serve/limits.ts). */
  limits?: Partial<ServeLimits>;
}

export interface RunningServer {
  url: string;
  model: ServedModel;
  server: Server;
  batcher: Batcher<Uint8Array, Float32Array>;
  close(): Promise<void>;
}

/** A request the client got wrong: answered with this status and a JSON message. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...extra });
  res.end(text);
}

/** The whole body, refused with 413 past `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new HttpError(413, `the image is ${declared} bytes; the most this server takes is ${limit} (--max-bytes)`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) {
        failed = true;
        reject(new HttpError(413, `the image is over ${limit} bytes, the most this server takes (--max-bytes)`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => failed || resolve(Buffer.concat(chunks)));
    req.on('error', (e) => failed || reject(new HttpError(400, `the request body could not be read: ${e.message}`)));
  });
}

interface Upload {
  name: string;
  bytes: Buffer;
}

/** Room for a multipart body's boundaries, part headers and small text fields, beside its files. */
const MULTIPART_OVERHEAD = 1 << 20;

/**
 * The files of a multipart/form-data body (every file field), each at most `limit` bytes,
 * at most `maxFiles` of them, the whole body at most maxFiles x limit (+ 1 MiB): every limit
 * is checked as the body streams in, and the first one crossed answers at once (the rest of
 * the body is not parsed). A body that ends early or is cut off is a 400, never a crash.
 */
function readMultipart(req: IncomingMessage, limit: number, maxFiles: number, maxRequestBytes: number): Promise<Upload[]> {
  const bodyLimit = Math.min(limit * maxFiles + MULTIPART_OVERHEAD, maxRequestBytes);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > bodyLimit) {
    return Promise.reject(new HttpError(413, `the body is ${declared} bytes; the most this server takes is ${bodyLimit} (--max-bytes per file, ${maxFiles} files)`));
  }
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { fileSize: limit, files: maxFiles, fields: 100, parts: maxFiles + 100 } });
    } catch (e) {
      reject(new HttpError(400, `cannot read the multipart body: ${(e as Error).message}`));
      return;
    }
    const files: Upload[] = [];
    let settled = false;
    // The first failure answers; the parser stops (what is left of the body is drained by the caller).
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      req.unpipe(bb);
      req.off('data', count);
      bb.removeAllListeners('close');
      // Errors the parser raises on its streams after this are expected: keep them from being unhandled.
      bb.on('error', () => {});
      // Not from inside busboy's own event (it goes on using the file stream after 'limit').
      setImmediate(() => bb.destroy());
      reject(error);
    };
    let size = 0;
    const count = (c: Buffer): void => {
      size += c.length;
      if (size > bodyLimit) fail(new HttpError(413, `the body is over ${bodyLimit} bytes, the most this server takes (--max-bytes per file, ${maxFiles} files)`));
    };
    req.on('data', count);
    bb.on('file', (_field, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      // A body that ends inside a file errors the file's stream as well as the parser.
      stream.on('error', (e: Error) => fail(new HttpError(400, `cannot read the multipart body: ${e.message}`)));
      stream.on('limit', () => fail(new HttpError(413, `${info.filename || 'a file'} is over ${limit} bytes, the most this server takes (--max-bytes)`)));
      stream.on('close', () => settled || files.push({ name: info.filename || `file${files.length + 1}`, bytes: Buffer.concat(chunks) }));
    });
    bb.on('filesLimit', () => fail(new HttpError(413, `more than ${maxFiles} files in one request`)));
    bb.on('fieldsLimit', () => fail(new HttpError(413, 'more than 100 text fields in one request')));
    bb.on('partsLimit', () => fail(new HttpError(413, `more than ${maxFiles + 100} parts in one request`)));
    bb.on('error', (e: Error) => fail(new HttpError(400, `cannot read the multipart body: ${e.message}`)));
    bb.on('close', () => {
      if (settled) return;
      settled = true;
      req.off('data', count);
      if (files.length === 0) reject(new HttpError(400, 'the multipart body has no files: send the images as file fields'));
      else resolve(files);
    });
    // The client went away (or the connection broke) before the body ended.
    req.on('aborted', () => fail(new HttpError(400, 'the request was cut off before its body ended')));
    req.on('error', (e: Error) => fail(new HttpError(400, `the request body could not be read: ${e.message}`)));
    req.pipe(bb);
  });
}

function topFrom(url: URL, classes: number, fallback: number): number {
  const raw = url.searchParams.get('top');
  if (raw === null) return Math.min(fallback, classes);
  const k = Number(raw);
  if (!Number.isInteger(k) || k < 1) throw new HttpError(400, `top must be a whole number from 1 to ${classes}, got '${raw}'`);
  return Math.min(k, classes);
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const model = ServedModel.load(o.run, o.stage);
  const maxBytes = o.maxBytes ?? 10 * 2 ** 20;
  const maxFiles = o.maxFiles ?? 64;
  const top = o.top ?? 5;
  const batcher = new Batcher<Uint8Array, Float32Array>((frames) => model.probabilities(frames), o.maxBatch ?? 32);
  const limits: ServeLimits = { ...SERVE_LIMITS, ...o.limits };
  const queue = new Admission(limits.maxQueue);
  const decodes = new Gate(limits.decodes);
  // Answers and pages name the run by its folder's name, never by its path on this machine.
  const name = basename(resolve(o.run));
  const page = servePage({ model: `${name}:${model.stage}`, classes: model.classes, top: Math.min(top, model.classes.length) });
  const busy = () => new HttpError(503, `the server is busy (${queue.inUse} images waiting, at most ${limits.maxQueue}): try again shortly`, { 'retry-after': '1' });

  /** One image's top k; `request` groups a request's images for their turns (round-robin between requests). */
  async function classify(bytes: Buffer, what: string, k: number, request: object): Promise<ClassProbability[]> {
    if (bytes.length === 0) throw new HttpError(400, `${what}: the body is empty; send the image's bytes`);
    if (!imageFormat(bytes)) throw new HttpError(415, `${what}: not a JPEG, PNG or WebP image (the formats this server reads)`);
    const frame = await decodes.run(async () => {
      const pixels = await headerPixels(bytes);
      if (pixels === null) throw new HttpError(400, `${what}: its header cannot be read as an image`);
      if (pixels > limits.maxPixels) throw new HttpError(413, `${what}: ${(pixels / 1e6).toFixed(1)} megapixels, over the ${limits.maxPixels / 1e6} this server decodes`);
      try {
        return await model.decode(bytes);
      } catch (e) {
        throw new HttpError(400, `${what}: cannot be decoded: ${(e as Error).message}`);
      }
    }, request);
    return model.topK(await batcher.submit(frame, request), k);
  }

  async function predict(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const k = topFrom(url, model.classes.length, top);
    // A place in the queue before the body is read; given back once the request is answered.
    if (!queue.tryTake(1)) throw busy();
    let held = 1;
    try {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const about = { model: name, stage: model.stage };
      if (type === 'multipart/form-data') {
        const files = await readMultipart(req, maxBytes, maxFiles, limits.maxRequestBytes);
        if (!queue.tryTake(files.length - 1)) throw busy();
        held = files.length;
        const results = await Promise.all(
          files.map(async (f) => {
            try {
              return { file: f.name, predictions: await classify(f.bytes, f.name, k, req) };
            } catch (e) {
              if (e instanceof HttpError) return { file: f.name, error: e.message };
              throw e;
            }
          }),
        );
        const ok = results.some((r) => 'predictions' in r);
        sendJson(res, ok ? 200 : 400, ok ? { ...about, results } : { error: 'none of the files is an image this server can read', results });
        return;
      }
      if (!(type.startsWith('image/') || type === 'application/octet-stream')) {
        throw new HttpError(415, `content type '${type || 'none'}' is not an image: send the image's bytes as image/png, image/jpeg, image/webp or application/octet-stream, or files as multipart/form-data`);
      }
      const bytes = await readBody(req, Math.min(maxBytes, limits.maxRequestBytes));
      sendJson(res, 200, { ...about, predictions: await classify(bytes, 'the body', k, req) });
    } finally {
      queue.give(held);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      throw new HttpError(400, 'the request target is not a valid path');
    }
    const route = `${req.method} ${url.pathname}`;
    switch (route) {
      case 'GET /':
      case 'GET /index.html':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(page) });
        res.end(page);
        return;
      case 'GET /healthz':
        sendJson(res, 200, { status: 'ok', model: name, stage: model.stage, classes: model.classes, imageSize: model.config.imageSize, channels: model.config.channels });
        return;
      case 'POST /predict':
        await predict(req, res, url);
        return;
    }
    if (['/', '/index.html', '/healthz', '/predict'].includes(url.pathname)) {
      throw new HttpError(405, `${req.method} is not allowed on ${url.pathname} (${url.pathname === '/predict' ? 'POST' : 'GET'} it)`);
    }
    throw new HttpError(404, `no such route: ${req.method} ${url.pathname} (routes: GET /, GET /healthz, POST /predict)`);
  }

  // The header and request timeouts are checked every second (Node's default is every 30 s,
  // long enough for slow clients to hold connections well past the timeouts).
  const server = createServer({ connectionsCheckingInterval: 1_000 }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
      const message = e instanceof HttpError ? e.message : `internal error: ${(e as Error)?.message ?? String(e)}`;
      if (status === 500) console.error(`simclr serve: ${req.method} ${req.url}: ${message}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // A body left unread (413, 415) is drained; the connection closes after the answer.
      const unread = !req.complete;
      sendJson(res, status, { error: message }, { ...(e instanceof HttpError ? e.headers : {}), ...(unread ? { connection: 'close' } : {}) });
      if (unread) req.resume();
    });
  });
  server.keepAliveTimeout = 5_000;
  server.maxConnections = limits.maxConnections;
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 8080, o.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    model,
    server,
    batcher,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          model.dispose();
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
