// Why do 2 workers and 1 worker drift apart? The issue's recipe (ResNet-18 at width 0.25,
// CIFAR stem, 3-layer head, batch 128 of Fashion-MNIST, LARS at lr 0.5 with cosine decay
// over the steps and no warm-up, T 0.5, synchronized batch norm on workers) for a few
// steps on fixed keyed views, three ways: 1 process x 1 thread, 1 process x 2 threads,
// 2 workers x 1 thread; per step the loss and the weights. In float32 and in float64:
// rounding differences shrink by ~1e9 in float64, any other cause (a statistic computed
// another way, a loss weight, a norm) would not. Results: bench/scale-results.md.
//
//   npm run bench:drift -- [--steps 16] [--dtypes float32,float64]
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as t from '../src';
import { loadIdxSplit, FASHION_MNIST_DIR } from '../src/data/idx';
import { ProcessGroup, broadcastWeights, freePort, syncBatchNorm, useSyncBatchNorm, workerEnv } from '../src/distributed';
import { warmupCosine } from '../src/optim/schedule';
import { pretrainUpdate, type PretrainState } from '../src/train';

const { values: opts } = parseArgs({
  options: {
    steps: { type: 'string', default: '16' },
    batch: { type: 'string', default: '128' },
    dtypes: { type: 'string', default: 'float32,float64' },
    child: { type: 'boolean', default: false },
    threads: { type: 'string', default: '1' },
    dtype: { type: 'string', default: 'float32' },
    out: { type: 'string', default: '' },
    'worker-bn': { type: 'boolean', default: false },
  },
});
const STEPS = Number(opts.steps);
const BATCH = Number(opts.batch);

/** One run: prints a JSON line per step (rank 0) and appends the flattened weights to `out`. */
async function child(): Promise<void> {
  const dtype = opts.dtype as 'float32' | 'float64';
  t.useCompute({ precision: 'fp32', channelsLast: 'off' });
  t.setNumThreads(Number(opts.threads));
  const w = workerEnv();
  const group = w && w.worldSize > 1 ? ProcessGroup.init({ ...w, timeoutMs: 120_000 }) : null;
  const rank = group?.rank ?? 0;
  const size = group?.worldSize ?? 1;
  const data = loadIdxSplit(FASHION_MNIST_DIR, 'train');
  const images = t.keep(t.fromBytes(data.images.subarray(0, STEPS * BATCH * 784), [STEPS * BATCH, 1, 28, 28], 'uint8'));
  t.manualSeed(0);
  const model = t.nn.prepareModel(new t.SimCLRModel({ encoder: { depth: 18, width: 0.25, cifarStem: true, inChannels: 1 }, head: { layers: 3, outDim: 128 } }));
  if (dtype === 'float64') model.to({ dtype: 'float64' });
  if (group) {
    broadcastWeights(group, model);
    useSyncBatchNorm(model, group);
  } else if (opts['worker-bn']) {
    // One process with the workers' batch norm (statistics summed by a group of one): what
    // is left between this and 2 workers is the gathering and the averaging.
    const one = ProcessGroup.init({ masterAddr: '127.0.0.1', masterPort: await freePort(), worldSize: 1, rank: 0 });
    const impl = syncBatchNorm(one);
    for (const [, m] of model.namedModules()) if (m instanceof t.nn.BatchNorm) m.trainingImpl = impl;
  }
  const optimizer = new t.LARS(model.namedParameters(), { lr: 0.5, momentum: 0.9, weightDecay: 1e-4, trustCoefficient: 0.001 });
  const lrAt = warmupCosine({ peak: 0.5, warmupSteps: 0, totalSteps: STEPS });
  const state: PretrainState = { model, optimizer, views: t.simclrViewOptions(28), norm: { mean: [0.286], std: [0.353] }, temperature: 0.5, workers: group ? { group } : null };
  const fd = rank === 0 ? openSync(opts.out, 'w') : -1;
  if (rank === 0) writeFileSync(`${opts.out}.names.json`, JSON.stringify(model.namedParameters().map(([name, p]) => [name, p.numel])));
  model.train();
  for (let step = 0; step < STEPS; step++) {
    t.tidy(() => {
      const share = BATCH / size;
      const first = step * BATCH + rank * share;
      const indices = Array.from({ length: share }, (_, i) => first + i);
      const views = t.cat(t.simclrViews(images.narrow(0, first, share), state.views, { seed: 0, epoch: 0, indices })).to(dtype);
      const { loss } = pretrainUpdate(state, views, { stage: 'drift', step, lr: lrAt(step) });
      if (rank === 0) {
        const flat = t.cat(model.parameters().map((p) => p.detach().reshape(-1))).to('float64');
        const bytes = flat.data() as Float64Array;
        writeSync(fd, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        process.stdout.write(JSON.stringify({ step: step + 1, loss }) + '\n');
      }
    });
  }
  if (fd >= 0) closeSync(fd);
  group?.barrier();
  group?.destroy();
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [__filename, '--child', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`drift child ${args.join(' ')} failed (${code}): ${err}`))));
  });
}

type Way = '1t' | '2t' | '2w' | '1c';

async function parent(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'simclr-drift-'));
  try {
    for (const dtype of opts.dtypes.split(',')) {
      const base = ['--steps', String(STEPS), '--batch', String(BATCH), '--dtype', dtype];
      const file = (w: Way): string => join(dir, `${dtype}-${w}.f64`);
      const losses = new Map<Way, number[]>();
      const parse = (text: string): number[] => text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { loss: number }).loss);
      losses.set('1t', parse(await run([...base, '--threads', '1', '--out', file('1t')], { OMP_NUM_THREADS: '1' })));
      losses.set('2t', parse(await run([...base, '--threads', '2', '--out', file('2t')], { OMP_NUM_THREADS: '2' })));
      losses.set('1c', parse(await run([...base, '--threads', '1', '--worker-bn', '--out', file('1c')], { OMP_NUM_THREADS: '1' })));
      const port = await freePort();
      const worker = (rank: number): Promise<string> =>
        run([...base, '--threads', '1', '--out', file('2w')], { OMP_NUM_THREADS: '1', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), WORLD_SIZE: '2', RANK: String(rank), LOCAL_RANK: String(rank) });
      losses.set('2w', parse((await Promise.all([worker(0), worker(1)]))[0]!));
      const weights = (w: Way): Float64Array => {
        const b = readFileSync(file(w));
        return new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8);
      };
      const all = { '1t': weights('1t'), '2t': weights('2t'), '2w': weights('2w'), '1c': weights('1c') };
      const n = all['1t'].length / STEPS;
      const wdiff = (a: Way, b: Way, step: number): number => {
        let d = 0;
        let s = 0;
        for (let i = step * n; i < (step + 1) * n; i++) {
          d += (all[a][i]! - all[b][i]!) ** 2;
          s += all[a][i]! ** 2;
        }
        return Math.sqrt(d / s);
      };
      const ldiff = (a: Way, b: Way, step: number): number => Math.abs(losses.get(a)![step]! - losses.get(b)![step]!) / Math.abs(losses.get(b)![step]!);
      const pairs: [Way, Way, string][] = [
        ['2t', '1t', '1 process: 2 threads vs 1'],
        ['2w', '1t', '2 workers x 1 thread vs 1 process x 1 thread'],
        ['2w', '2t', '2 workers x 1 thread vs 1 process x 2 threads (the issue\'s)'],
        ['2w', '1c', '2 workers vs 1 process x 1 thread with the workers\' batch norm formula'],
      ];
      console.log(`${dtype}: per step, loss of 1 process x 1 thread; then per pair the relative loss difference | relative weight difference ||wa-wb||/||wb||`);
      console.log(`  pairs: ${pairs.map(([a, b, what], i) => `(${i + 1}) ${a}-${b}: ${what}`).join('; ')}`);
      for (let s = 0; s < STEPS; s++) {
        console.log(`  ${String(s + 1).padStart(2)} ${losses.get('1t')![s]!.toFixed(6)}  ${pairs.map(([a, b]) => `${ldiff(a, b, s).toExponential(2)} | ${wdiff(a, b, s).toExponential(2)}`).join('   ')}`);
      }
      // Which parameters differ most after step 1 (and step 2): where the difference starts.
      const names = JSON.parse(readFileSync(`${file('1t')}.names.json`, 'utf8')) as [string, number][];
      const perParam = (a: Way, b: Way, step: number): [string, number][] => {
        let at = step * n;
        return names.map(([name, size]) => {
          let d = 0;
          let s2 = 0;
          for (let i = at; i < at + size; i++) {
            d += (all[a][i]! - all[b][i]!) ** 2;
            s2 += all[b][i]! ** 2;
          }
          at += size;
          return [name, Math.sqrt(d / Math.max(s2, 1e-300))] as [string, number];
        });
      };
      for (const [a, b] of pairs) {
        for (const step of [0, 1]) {
          const top = perParam(a, b, step).sort((x, y) => y[1] - x[1]).slice(0, 4);
          console.log(`  ${a}-${b} after step ${step + 1}, largest relative differences: ${top.map(([name, v]) => `${name} ${v.toExponential(2)}`).join(', ')}`);
        }
      }
      for (const [a, b] of pairs) {
        const worst = Math.max(...Array.from({ length: STEPS }, (_, s) => ldiff(a, b, s)));
        const growth = (wdiff(a, b, STEPS - 1) / wdiff(a, b, 0)) ** (1 / (STEPS - 1));
        console.log(`drift_${a}_vs_${b}_${dtype}=${worst.toExponential(3)}  (largest relative loss difference over ${STEPS} steps; weights ${wdiff(a, b, 0).toExponential(2)} after step 1, ${wdiff(a, b, STEPS - 1).toExponential(2)} after step ${STEPS}, x${growth.toFixed(2)} per step)`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (opts.child)
  child().catch((e) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  });
else
  parent().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
