// `simclr label`: a local page to label suggested images. GET / the page, GET /state the rows
// and classes, GET /image/N row N's image, POST /label {row, label, skipped} records one.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { LabelSheet } from './sheet';
import { labelPage } from './page';

export interface LabelServerOptions {
  suggestions: string;
  classes: string[];
  port?: number;
  host?: string;
}

const TYPES: Record<string, string> = { '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp' };
const MAX_BODY = 64 * 1024;

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}
const json = (res: ServerResponse, status: number, value: unknown): void => send(res, status, 'application/json', JSON.stringify(value));

async function readBody(req: IncomingMessage): Promise<string> {
  let size = 0;
  const parts: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new RangeError('request body too large');
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts).toString('utf8');
}

export interface LabelServer {
  server: Server;
  url: string;
  sheet: LabelSheet;
  close(): Promise<void>;
}

export async function startLabelServer(o: LabelServerOptions): Promise<LabelServer> {
  const sheet = new LabelSheet(o.suggestions);
  const classes = o.classes.length ? o.classes : sheet.labelsInUse();
  const page = labelPage();
  let hosts: string[] = [];
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // Only this page may talk to the server: another site's page (or a rebound DNS name) sends another Host.
    if (!hosts.includes(req.headers.host ?? '')) return json(res, 421, { error: 'wrong host' });
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/') return send(res, 200, 'text/html; charset=utf-8', page);
    if (req.method === 'GET' && url.pathname === '/state') {
      return json(res, 200, { classes, rows: sheet.rows.map((r) => ({ label: r.label, skipped: r.skipped, why: r.extra.why ?? '' })) });
    }
    const image = /^\/image\/(\d+)$/.exec(url.pathname);
    if (req.method === 'GET' && image) {
      const row = sheet.rows[Number(image[1])];
      if (!row) return json(res, 404, { error: 'no such row' });
      return send(res, 200, TYPES[extname(row.file).toLowerCase()] ?? 'application/octet-stream', await readFile(row.file));
    }
    if (req.method === 'POST' && url.pathname === '/label') {
      if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return json(res, 415, { error: 'application/json only' });
      const body = JSON.parse(await readBody(req)) as { row?: unknown; label?: unknown; skipped?: unknown };
      const row = Number(body.row);
      const label = typeof body.label === 'string' ? body.label : '';
      if (!Number.isInteger(row) || !sheet.rows[row]) return json(res, 400, { error: 'row must be a row of the file' });
      if (label && !classes.includes(label)) return json(res, 400, { error: `'${label}' is not one of the classes` });
      sheet.set(row, label, body.skipped === true);
      return json(res, 200, { ok: true });
    }
    return json(res, 404, { error: 'not found' });
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => json(res, e instanceof SyntaxError || e instanceof RangeError ? 400 : 500, { error: (e as Error).message }));
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(o.port ?? 8090, o.host ?? '127.0.0.1', () => done());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  hosts = [`${o.host ?? '127.0.0.1'}:${port}`, `localhost:${port}`];
  return { server, url: `http://${o.host ?? '127.0.0.1'}:${port}`, sheet, close: () => new Promise((done) => server.close(() => done())) };
}
