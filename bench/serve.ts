// Load test of `simclr serve` on loopback: requests/s and p50/p99 latency of POST /predict
// (one PNG per request) at concurrency 1, 8 and 32, then an abuse round: the normal clients'
// p99 latency without and under abuse (slow clients holding connections, image bombs, a
// flood past the queue) and the server's peak memory (serve_p99_under_abuse_ratio=).
// Bounded: at most --requests requests and --seconds seconds per level, to 127.0.0.1 only;
// the server is started and stopped here. Writes bench/results/serve.json.
//
//   npm run bench:serve                          the newest run under runs/ with a classifier
//   npm run bench:serve -- --model runs/demo-x [--requests 400] [--seconds 20] [--threads 1,2] [--out bench/serve-results.md]
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { squareFrames, writePng } from '../src/data';
import { openRun, testData } from '../src/run/folder';
import { defaultStage } from '../src/export';
import { writeBenchResults } from './results-file';

const LEVELS = [1, 8, 32];

function newestRun(): string | null {
  const found: { dir: string; time: number }[] = [];
  const visit = (dir: string, depth: number): void => {
    if (!existsSync(dir) || depth > 2) return;
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (!statSync(p).isDirectory()) continue;
      if (existsSync(join(p, 'config.json')) && readdirSync(p).some((f) => /^(distill|finetune)-.*\.safetensors$/.test(f))) found.push({ dir: p, time: statSync(join(p, 'config.json')).mtimeMs });
      else visit(p, depth + 1);
    }
  };
  visit('runs', 0);
  return found.sort((a, b) => b.time - a.time)[0]?.dir ?? null;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Requests of `concurrency` clients: the latencies of those answered 200, and how many were not (busy 503s, failed connections). */
async function level(url: string, png: Buffer, concurrency: number, maxRequests: number, maxSeconds: number): Promise<{ done: number; seconds: number; p50: number; p99: number; errors: number; busy: number }> {
  const latencies: number[] = [];
  let started = 0;
  let errors = 0;
  let busy = 0;
  const t0 = performance.now();
  const deadline = t0 + maxSeconds * 1000;
  const worker = async (): Promise<void> => {
    while (started < maxRequests && performance.now() < deadline) {
      started++;
      const s = performance.now();
      try {
        const res = await fetch(`${url}/predict`, { method: 'POST', body: png, headers: { 'content-type': 'image/png' } });
        await res.arrayBuffer();
        if (res.status === 503) busy++;
        else if (res.status !== 200) errors++;
        else latencies.push(performance.now() - s);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { done: latencies.length, seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), errors, busy };
}

/** CRC-32 (PNG's) of bytes. */
function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A PNG signature and header claiming width x height pixels (no image data): what an image bomb starts with. */
function bombPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(17);
  ihdr.write('IHDR', 0, 'latin1');
  ihdr.writeUInt32BE(width, 4);
  ihdr.writeUInt32BE(height, 8);
  ihdr.set([8, 2, 0, 0, 0], 12); // 8-bit RGB
  const chunk = Buffer.alloc(25);
  chunk.writeUInt32BE(13, 0);
  ihdr.copy(chunk, 4);
  chunk.writeUInt32BE(crc32(ihdr), 21);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk]);
}

/** The server's peak resident memory so far (VmHWM), in MiB. */
function peakMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Abuse {
  stop: () => Promise<{ slowHeld: number; bombs: Record<number, number>; flood: Record<number, number> }>;
}

/**
 * Bounded abuse on 127.0.0.1 while normal clients run: slow clients holding connections (a
 * header byte every 2 s), image bombs (a PNG header claiming 100 megapixels), and a flood of
 * concurrent multipart requests of many images, past the queue. Each kind counts what the
 * server answered.
 */
function startAbuse(url: string, png: Buffer, o: { slow: number; bombers: number; flood: number; floodFiles: number }): Abuse {
  const { hostname, port } = new URL(url);
  let stopped = false;
  const sockets: Socket[] = [];
  let cut = 0; // slow clients the server closed (its header timeout)
  for (let i = 0; i < o.slow; i++) {
    const s = connect(Number(port), hostname);
    s.on('error', () => undefined);
    s.on('close', () => void (stopped || cut++));
    s.write('POST /predict HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => (s.writable ? s.write('X') : clearInterval(drip)), 2000);
    s.on('close', () => clearInterval(drip));
    sockets.push(s);
  }
  const bombs: Record<number, number> = {};
  const flood: Record<number, number> = {};
  const count = (into: Record<number, number>, status: number): void => void (into[status] = (into[status] ?? 0) + 1);
  const bomb = bombPng(10_000, 10_000);
  const loop = async (body: Buffer | FormData, into: Record<number, number>): Promise<void> => {
    while (!stopped) {
      try {
        const res = await fetch(`${url}/predict`, { method: 'POST', body, ...(body instanceof Buffer ? { headers: { 'content-type': 'image/png' } } : {}) });
        await res.arrayBuffer();
        count(into, res.status);
      } catch {
        count(into, 0);
      }
    }
  };
  const many = new FormData();
  for (let i = 0; i < o.floodFiles; i++) many.append('image', new Blob([png], { type: 'image/png' }), `${i}.png`);
  const loops = [...Array.from({ length: o.bombers }, () => loop(bomb, bombs)), ...Array.from({ length: o.flood }, () => loop(many, flood))];
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      const slowHeld = o.slow - cut;
      for (const s of sockets) s.destroy();
      return { slowHeld, bombs, flood };
    },
  };
}

const ABUSE = { slow: 64, bombers: 4, flood: 32, floodFiles: 16 };
type Seen = Awaited<ReturnType<Abuse['stop']>>;

/** The abusers' process (bench/serve.ts --abuse-url URL --abuse-png FILE): abuse until a line on stdin, then what was seen, as JSON. */
async function abuseChild(url: string, pngFile: string): Promise<number> {
  const abuse = startAbuse(url, readFileSync(pngFile), ABUSE);
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  process.stdout.write(`${JSON.stringify(await abuse.stop())}\n`);
  process.exit(0); // fetch's pooled connections would keep the process alive
}

/**
 * The abusers in a process of their own: in the normal clients' process, their hundreds of
 * requests a second held up the normal clients' own event loop, and that wait counted as
 * the server's latency. They still share the machine's cores with it.
 */
function spawnAbuse(url: string, pngFile: string): { stop: () => Promise<Seen> } {
  const child = spawn(process.execPath, [__filename, '--abuse-url', url, '--abuse-png', pngFile], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  const ended = new Promise<Seen>((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as Seen) : reject(new Error(`the abusers' process exited with ${code}`)))));
  return {
    stop: () => {
      child.stdin.end('stop\n');
      return ended;
    },
  };
}

/** Normal clients' p99 without abuse and under it, and the server's peak memory: written to bench/results/serve.json. */
async function abuseRound(url: string, pid: number, pngFile: string, png: Buffer, maxRequests: number, maxSeconds: number): Promise<Record<string, number | string>> {
  // Each phase runs its full time (past the server's 10 s header timeout, which the slow clients meet).
  maxSeconds = Math.max(12, maxSeconds);
  maxRequests = Number.MAX_SAFE_INTEGER;
  const quiet = await level(url, png, 8, maxRequests, maxSeconds);
  const quietPeak = peakMiB(pid);
  const abuse = spawnAbuse(url, pngFile);
  await new Promise((resolve) => setTimeout(resolve, 1000)); // the flood fills the queue first
  const loud = await level(url, png, 8, maxRequests, maxSeconds);
  const seen = await abuse.stop();
  const loudPeak = peakMiB(pid);
  const alive = await fetch(`${url}/healthz`).then((r) => r.status === 200).catch(() => false);
  const ratio = loud.p99 / quiet.p99;
  const figures = {
    serve_p99_quiet_ms: Number(quiet.p99.toFixed(1)),
    serve_p99_under_abuse_ms: Number(loud.p99.toFixed(1)),
    serve_p99_under_abuse_ratio: Number(ratio.toFixed(2)),
    serve_normal_answered_under_abuse: loud.done,
    serve_normal_busy_503_under_abuse: loud.busy,
    serve_normal_errors_under_abuse: loud.errors,
    serve_peak_rss_mib_quiet: Number(quietPeak.toFixed(0)),
    serve_peak_rss_mib_under_abuse: Number(loudPeak.toFixed(0)),
    serve_alive_after_abuse: alive ? 'yes' : 'no',
    serve_abuse_bomb_answers: JSON.stringify(seen.bombs),
    serve_abuse_flood_answers: JSON.stringify(seen.flood),
  };
  for (const [k, v] of Object.entries(figures)) console.log(`${k}=${v}`);
  console.log(`(abuse, from a process of its own: ${ABUSE.slow} slow clients, ${seen.slowHeld} still connected at the end (the others cut by the header timeout); ${ABUSE.bombers} clients sending 100-megapixel PNG headers; ${ABUSE.flood} clients each sending ${ABUSE.floodFiles} images at a time, past the queue of 256; normal clients: concurrency 8 for ${maxSeconds} s; their latencies are of the requests answered 200)`);
  return figures;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      requests: { type: 'string', default: '400' },
      seconds: { type: 'string', default: '20' },
      threads: { type: 'string', default: [...new Set([1, cpus().length])].join(',') },
      out: { type: 'string', default: join('bench', 'serve-results.md') },
      'max-batch': { type: 'string' },
      'abuse-url': { type: 'string' },
      'abuse-png': { type: 'string' },
    },
  });
  if (values['abuse-url']) return abuseChild(values['abuse-url'], values['abuse-png']!);
  const run = values.model ?? newestRun();
  if (!run) {
    console.error('bench:serve: no run with a classifier under runs/; make one (npm run demo -- --quick) or pass --model RUN');
    return 2;
  }
  const maxRequests = Number(values.requests);
  const maxSeconds = Number(values.seconds);
  const { run: folder, config } = openRun(run);
  const stage = defaultStage(folder, run);
  // One test image of the run, as a PNG.
  const tmp = mkdtempSync(join(tmpdir(), 'simclr-bench-serve-'));
  const pngFile = join(tmp, 'image.png');
  const ds = await testData(config);
  const frame = config.channels * config.imageSize * config.imageSize;
  await writePng(pngFile, squareFrames(ds, [0]).subarray(0, frame), config.channels, config.imageSize, config.imageSize);
  const png = readFileSync(pngFile);

  const cli = join(__dirname, '..', 'src', 'cli', 'main.js');
  const threadCounts = values.threads!.split(',').map((x) => Number(x.trim()));
  if (threadCounts.some((n) => !Number.isInteger(n) || n < 1)) {
    console.error(`bench:serve: --threads must be whole numbers, comma-separated (1,2), got '${values.threads}'`);
    return 2;
  }
  const rows: string[] = [];
  const figures: Record<string, number | string> = {};
  try {
    for (const threads of threadCounts) {
      const batchArgs = values['max-batch'] ? ['--max-batch', values['max-batch']] : [];
      const child = spawn(process.execPath, [cli, 'serve', '--model', run, '--port', '0', '--host', '127.0.0.1', '--threads', String(threads), ...batchArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        const url = await new Promise<string>((resolve, reject) => {
          let out = '';
          child.stdout.on('data', (d: Buffer) => {
            out += d;
            const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
            if (m) resolve(m[1]!);
          });
          child.on('exit', (code) => reject(new Error(`simclr serve exited with ${code}`)));
        });
        await level(url, png, 4, 40, 10); // warm-up
        for (const c of LEVELS) {
          const r = await level(url, png, c, maxRequests, maxSeconds);
          console.log(`threads ${threads}, concurrency ${c}: ${r.done} requests in ${r.seconds.toFixed(1)} s, ${(r.done / r.seconds).toFixed(1)} req/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, ${r.errors + r.busy} errors`);
          rows.push(`| ${threads} | ${c} | ${r.done} | ${(r.done / r.seconds).toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.errors + r.busy} |`);
          figures[`serve_requests_per_second_threads${threads}_concurrency${c}`] = Number((r.done / r.seconds).toFixed(1));
          figures[`serve_p99_ms_threads${threads}_concurrency${c}`] = Number(r.p99.toFixed(1));
        }
        if (threads === threadCounts.at(-1)) Object.assign(figures, await abuseRound(url, child.pid!, pngFile, png, maxRequests, maxSeconds));
      } finally {
        child.kill('SIGTERM');
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const load = loadavg()[0]!.toFixed(1);
  const md = [
    '# `simclr serve` under load',
    '',
    `Made by \`npm run bench:serve\` (bench/serve.ts) on ${new Date().toISOString().slice(0, 10)}: POST /predict with one`,
    `${config.imageSize}x${config.imageSize} PNG (${png.length} bytes) per request, over loopback with keep-alive; client and server on the same`,
    `machine (${cpus().length} cores, ${cpu}; 1-minute load average ${load} at the end, other jobs included). Model: ${run}:${stage}`,
    `(ResNet-${config.pretrain.encoder.depth} width ${config.pretrain.encoder.width}, ${config.channels} channel${config.channels > 1 ? 's' : ''}, ${config.classes.length} classes). Each level: at most ${maxRequests} requests`,
    `or ${maxSeconds} s. Concurrent requests are decoded by sharp on its threads and classified together in one forward pass`,
    '(up to --max-batch 32 images). `threads` is the server\'s --threads (libtorch intra-op threads).',
    '',
    '| threads | concurrency | requests | requests/s | p50 latency (ms) | p99 latency (ms) | errors |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
  ].join('\n');
  writeFileSync(values.out!, md);
  console.log(`wrote ${values.out}`);
  console.log(`wrote ${writeBenchResults('serve', figures, { model: `${basename(run)}:${stage}`, image: `${config.imageSize}x${config.imageSize} PNG, ${png.length} bytes`, maxRequests, maxSeconds, abusers: 'a process of their own' })}`);
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    console.error(`bench:serve: ${(e as Error).message}`);
    process.exitCode = 1;
  },
);
