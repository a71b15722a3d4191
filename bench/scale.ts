// Data-parallel scaling of `simclr pretrain`: the same global batch on
//   1x2    one worker with 2 threads,
//   2x1    2 workers x 1 thread (`--nproc 2`), gradients averaged during the backward pass,
//          batch norm over the global batch (the default, the paper's),
//   local  the same with each worker's own batch norm (`--batch-norm local`),
//   after  the same, averaged after the backward pass (SIMCLR_OVERLAP=0), for the overlap's worth,
//   2node  2 workers started as two nodes would start them: the torchrun variables set by hand
//          (MASTER_ADDR/MASTER_PORT/WORLD_SIZE/RANK, LOCAL_RANK 0 on each), over loopback,
// each a fresh command whose images/s are read from metrics.jsonl over the steps after the
// warm-up, in interleaved rounds (order rotated each round), at float32 and at the default
// precision. The workers run with SIMCLR_PROFILE_COLLECTIVES=1: each step's time spent
// waiting in collectives and the bytes handed to them. In each round at float32, PyTorch's
// DistributedDataParallel peer (bench/py/ddp_scale.py: the same model, batch and threads,
// synchronized and local batch norm; views excluded, which favours its 1-process side) runs
// one round of its own. From the measured compute and bytes,
// a projection to 8, 64 and 512 workers under a stated network model (bench/scale-results.md).
//
//   npm run bench:scale -- [--rounds 3] [--steps 10] [--batch 128] [--width 0.25] [--data fashion-mnist]
//                          [--precisions fp32,auto] [--no-after] [--no-nodes] [--no-torch]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as t from '../src';
import { freePort } from '../src/distributed/launch';
import { PYTHON, median, spread } from './peer';
import { CLI } from './stage-runs';
import { writeBenchResults } from './results-file';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    batch: { type: 'string', default: '128' },
    width: { type: 'string', default: '0.25' },
    data: { type: 'string', default: 'fashion-mnist' },
    precisions: { type: 'string', default: 'fp32,auto' },
    'no-after': { type: 'boolean', default: false },
    'no-nodes': { type: 'boolean', default: false },
    'no-torch': { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(opts.rounds);
const STEPS = Number(opts.steps);
const WARMUP = Number(opts.warmup);
const BATCH = Number(opts.batch);
const WIDTH = Number(opts.width);
const PRECISIONS = opts.precisions.split(',').map((p) => p.trim()) as ('fp32' | 'bf16' | 'auto')[];
for (const [name, v, min] of [['--rounds', ROUNDS, 1], ['--steps', STEPS, 2], ['--warmup', WARMUP, 1], ['--batch', BATCH, 2]] as const) {
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer of at least ${min}, got ${v}`);
}
if (BATCH % 2) throw new Error(`--batch must be even (two workers share it), got ${BATCH}`);

type Config = '1x2' | '2x1' | 'local' | 'after' | '2node';
const CONFIGS: Config[] = ['1x2', '2x1', 'local', ...(opts['no-after'] ? [] : ['after' as const]), ...(opts['no-nodes'] ? [] : ['2node' as const])];
const LABEL: Record<Config, string> = { '1x2': '1 worker x 2 threads', '2x1': '2 workers x 1 thread', local: '2 workers x 1 thread, local batch norm', after: '2 workers, averaged after backward', '2node': '2 "nodes" over loopback' };

interface Metric {
  time: string;
  step: number;
  loss: number;
  collective_s?: number;
  collectives?: number;
  comm_bytes?: number;
  comm_bn_bytes?: number;
  comm_proj_bytes?: number;
  comm_grad_bytes?: number;
}

interface Run {
  imagesPerS: number;
  /** per measured step */
  stepS: number[];
  collectiveS: number[];
  last: Metric;
}

const loadavg = (): string => {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
};

/** Runs node CLI args with env; rejects with its stderr when it fails. */
function cli(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`simclr ${args.join(' ')} failed (${signal ?? code}):\n${err}`))));
  });
}

/** One configuration at one precision: a fresh pretraining of WARMUP + STEPS steps. */
async function runConfig(config: Config, precision: string): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'simclr-scale-'));
  const out = join(dir, 'run');
  const args = ['pretrain', '--data', opts.data, '--max-images', String((WARMUP + STEPS) * BATCH), '--epochs', '1', '--batch', String(BATCH), '--width', String(WIDTH), '--precision', precision, '--seed', '0', '--out', out];
  const env: NodeJS.ProcessEnv = { SIMCLR_PROFILE_COLLECTIVES: '1' };
  try {
    if (config === '1x2') await cli([...args, '--threads', '2'], { ...env, OMP_NUM_THREADS: '2' });
    else if (config === '2x1' || config === 'after') await cli([...args, '--nproc', '2', '--threads', '1'], { ...env, ...(config === 'after' ? { SIMCLR_OVERLAP: '0' } : {}) });
    else if (config === 'local') await cli([...args, '--nproc', '2', '--threads', '1', '--batch-norm', 'local'], env);
    else {
      const port = await freePort();
      await Promise.all(
        [0, 1].map((rank) =>
          cli([...args, '--threads', '1'], { ...env, OMP_NUM_THREADS: '1', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), WORLD_SIZE: '2', RANK: String(rank), LOCAL_RANK: '0', LOCAL_WORLD_SIZE: '1' }),
        ),
      );
    }
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Metric)
      .filter((m) => typeof m.step === 'number' && typeof m.loss === 'number');
    if (metrics.length !== WARMUP + STEPS) throw new Error(`${config}: ${metrics.length} steps in metrics.jsonl, expected ${WARMUP + STEPS}`);
    const times = metrics.map((m) => Date.parse(m.time) / 1000);
    const measured = metrics.slice(WARMUP);
    const stepS = measured.map((_, i) => times[WARMUP + i]! - times[WARMUP + i - 1]!);
    return {
      imagesPerS: (BATCH * STEPS) / (times.at(-1)! - times[WARMUP - 1]!),
      stepS,
      collectiveS: measured.map((m) => m.collective_s ?? 0),
      last: metrics.at(-1)!,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** One round of PyTorch DDP's peer: its efficiencies with synchronized and local batch norm, runs moments apart. */
function torchRound(): { syncbn: number; localbn: number } {
  const out = execFileSync(PYTHON, ['bench/py/ddp_scale.py', '--rounds', '1', '--no-wait', '--steps', String(STEPS), '--warmup', String(WARMUP)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const figure = (name: string): number => {
    const m = new RegExp(`^${name}=([\\d.]+)`, 'm').exec(out);
    if (!m) throw new Error(`bench/py/ddp_scale.py printed no ${name}:\n${out}`);
    return Number(m[1]);
  };
  return { syncbn: figure('torch_scale_efficiency_2proc_syncbn'), localbn: figure('torch_scale_efficiency_2proc_localbn') };
}

/** What one step sends, and how many collectives of each kind, from the model itself. */
function stepShape(): { params: number; gradBytes: number; buckets: number; bucketBytes: number[]; firstBucketBytes: number; bnLayers: number; headDim: number } {
  return t.tidy(() => {
    const channels = opts.data.startsWith('fashion-mnist') || opts.data.startsWith('mnist') ? 1 : 3;
    const model = new t.SimCLRModel({ encoder: { depth: 18, width: WIDTH, cifarStem: true, inChannels: channels }, head: { layers: 3, outDim: 128 } });
    const params = model.parameters();
    const plan = t.distributed.planBuckets(params);
    // Each bucket: float32 gradients plus one flag per parameter.
    const bucketBytes = plan.buckets.map((b) => sum(b.map((i) => 4 * (params[i]!.numel + 1))));
    const bnLayers = model.namedModules().filter(([, m]) => m instanceof t.nn.BatchNorm).length;
    const shape = { params: sum(params.map((p) => p.numel)), gradBytes: sum(bucketBytes), buckets: plan.buckets.length, bucketBytes, firstBucketBytes: bucketBytes[0]!, bnLayers, headDim: 128 };
    model.dispose();
    return shape;
  });
}

/** NT-Xent forward + backward for b rows per view against p workers' rows (the others' random), on 1 thread: seconds. */
function lossSeconds(b: number, p: number, d: number): number {
  t.setNumThreads(1);
  return t.tidy(() => {
    t.manualSeed(0);
    const z1 = t.randn([b, d]).requiresGrad_();
    const z2 = t.randn([b, d]).requiresGrad_();
    const others = [t.randn([(p - 1) * b, d]), t.randn([(p - 1) * b, d])];
    let k = 0;
    const gather = (h: t.Tensor) => ({ all: p > 1 ? t.cat([h, others[k++ % 2]!]) : h, offset: 0 });
    const once = (): number => {
      const t0 = performance.now();
      t.tidy(() => t.ntXent(z1, z2, { temperature: 0.5, gather }).loss.backward());
      return (performance.now() - t0) / 1000;
    };
    once();
    return median([once(), once(), once()]);
  });
}

/** The network model: ring all-reduce of n bytes over p workers, bandwidth in bytes/s, latency per ring step in s. */
const ring = (n: number, p: number, bw: number, alpha: number): number => (2 * (p - 1) / p) * (n / bw) + 2 * (p - 1) * alpha;

async function main(): Promise<void> {
  console.log(`load average at start: ${loadavg()}`);
  console.log(`scale bench: ${opts.data}, ResNet-18 width ${WIDTH} + 3-layer head, global batch ${BATCH}; ${ROUNDS} rounds of ${CONFIGS.length} configurations x ${PRECISIONS.join(', ')}; ${WARMUP} warm-up + ${STEPS} measured steps each`);
  console.log(`configurations: ${CONFIGS.map((c) => `${c} = ${LABEL[c]}`).join('; ')}`);
  const runs = new Map<string, Run[]>();
  const torch: { syncbn: number; localbn: number }[] = [];
  const key = (c: Config, p: string): string => `${c}/${p}`;
  for (let r = 0; r < ROUNDS; r++) {
    for (const precision of PRECISIONS) {
      const order = CONFIGS.map((_, i) => CONFIGS[(i + r) % CONFIGS.length]!);
      const line: string[] = [];
      for (const c of order) {
        const run = await runConfig(c, precision);
        runs.set(key(c, precision), [...(runs.get(key(c, precision)) ?? []), run]);
        const share = c === '1x2' ? '' : ` (waiting in collectives ${((100 * sum(run.collectiveS)) / sum(run.stepS)).toFixed(0)}%)`;
        line.push(`${c} ${run.imagesPerS.toFixed(1)} img/s${share}`);
      }
      if (precision === 'fp32' && !opts['no-torch']) {
        const peer = torchRound();
        torch.push(peer);
        line.push(`PyTorch DDP efficiency ${peer.syncbn.toFixed(3)} (synchronized batch norm), ${peer.localbn.toFixed(3)} (local)`);
      }
      console.log(`round ${r + 1} ${precision}: ${line.join('; ')}; load ${loadavg()}`);
    }
  }
  console.log(`load average at end: ${loadavg()}`);

  // Per round, the ratio of runs moments apart; then the median and spread over rounds.
  const ratio = (a: Config, b: Config, p: string): number[] => runs.get(key(a, p))!.map((x, i) => x.imagesPerS / runs.get(key(b, p))![i]!.imagesPerS);
  const headline = PRECISIONS.includes('auto') ? 'auto' : PRECISIONS[0]!;
  const figures: Record<string, number | string> = {};
  for (const p of PRECISIONS) {
    const suffix = p === headline ? '' : `_${p}`;
    const eff = ratio('2x1', '1x2', p);
    console.log(`scale_efficiency_2proc${suffix}=${median(eff).toFixed(3)}  (${p}; target >= 0.85; spread ${spread(eff)})`);
    figures[`scale_efficiency_2proc${suffix}`] = Number(median(eff).toFixed(3));
    figures[`scale_efficiency_2proc${suffix}_spread`] = spread(eff);
    const local = ratio('local', '1x2', p);
    console.log(`scale_efficiency_2proc_local_bn${suffix}=${median(local).toFixed(3)}  (${p}; target >= 0.9; spread ${spread(local)})`);
    figures[`scale_efficiency_2proc_local_bn${suffix}`] = Number(median(local).toFixed(3));
    figures[`scale_efficiency_2proc_local_bn${suffix}_spread`] = spread(local);
    if (CONFIGS.includes('2node')) {
      const node = ratio('2node', '1x2', p);
      console.log(`scale_efficiency_2node_loopback${suffix}=${median(node).toFixed(3)}  (spread ${spread(node)})`);
      figures[`scale_efficiency_2node_loopback${suffix}`] = Number(median(node).toFixed(3));
    }
    if (CONFIGS.includes('after')) {
      const ov = ratio('2x1', 'after', p);
      console.log(`overlap_speedup${suffix}=${median(ov).toFixed(3)}  (images/s averaging during / after the backward pass; spread ${spread(ov)})`);
      figures[`overlap_speedup${suffix}`] = Number(median(ov).toFixed(3));
    }
    if (p === 'fp32' && torch.length) {
      const peers = [
        ['syncbn', '2x1', ''],
        ['localbn', 'local', '_local_bn'],
      ] as const;
      for (const [peer, ours, tag] of peers) {
        const theirs = torch.map((x) => x[peer]);
        const vs = ratio(ours, '1x2', p).map((e, i) => e / theirs[i]!);
        console.log(`torch_scale_efficiency_2proc${tag}_fp32=${median(theirs).toFixed(3)}  (PyTorch DDP, ${peer}; spread ${spread(theirs)}); scale_efficiency_vs_torch${tag}_fp32=${median(vs).toFixed(3)}  (ours / PyTorch's, per round; spread ${spread(vs)})`);
        figures[`torch_scale_efficiency_2proc${tag}_fp32`] = Number(median(theirs).toFixed(3));
        figures[`scale_efficiency_vs_torch${tag}_fp32`] = Number(median(vs).toFixed(3));
      }
    }
    const two = runs.get(key('2x1', p))!;
    const shares = two.map((x) => sum(x.collectiveS) / sum(x.stepS));
    console.log(`collective_time_share_2proc${suffix}=${median(shares).toFixed(3)}  (rank 0's time waiting in collectives / step time; spread ${spread(shares)})`);
    figures[`collective_time_share_2proc${suffix}`] = Number(median(shares).toFixed(3));
  }

  // Bytes per step and the projection, from the headline precision's 2-worker runs.
  const two = runs.get(key('2x1', headline))!;
  const m = two.at(-1)!.last;
  const shape = stepShape();
  const b = BATCH / 2;
  console.log(
    `bytes_per_step=${m.comm_bytes}  (per worker, into collectives: gradients ${m.comm_grad_bytes} in ${shape.buckets} bucket(s), all-gathered projections ${m.comm_proj_bytes}, ` +
      `sync-BN statistics ${m.comm_bn_bytes}; ${m.collectives} collectives; model ${shape.params} parameters, ${shape.bnLayers} batch norms)`,
  );
  const compute = median(two.flatMap((x) => x.stepS.map((s, i) => s - x.collectiveS[i]!)));
  const measuredStep = median(two.flatMap((x) => x.stepS));
  console.log(`per-worker step at ${b} images/worker, 1 thread: ${measuredStep.toFixed(3)} s, of which computing (not waiting in collectives) ${compute.toFixed(3)} s`);
  const loss2 = lossSeconds(b, 2, shape.headDim);
  // Latency-bound collectives: sync-BN's (4 per layer) and the step's figures, plus the
  // loop's stop check (outside the step): all but the buckets and the 4 projection sums.
  const small = (m.collectives ?? 0) - shape.buckets - 4 + 1;
  const networks = [
    { name: '25 Gb/s', bw: 25e9 / 8, alpha: 20e-6 },
    { name: '100 Gb/s', bw: 100e9 / 8, alpha: 5e-6 },
  ];
  console.log(
    `projection (per-worker batch ${b} and compute as measured; ring all-reduce: 2(p-1)/p x bytes / bandwidth + 2(p-1) x latency; small sums up to 32 workers: one exchange, latency + (p-1) x bytes / bandwidth; ` +
      `the first gradient bucket (${shape.firstBucketBytes} bytes) hidden behind the backward pass, the other ${shape.buckets - 1} not; ${small} latency-bound collectives; bench/scale-results.md):`,
  );
  for (const p of [8, 64, 512]) {
    const lossExtra = Math.max(0, lossSeconds(b, p, shape.headDim) - loss2);
    for (const n of networks) {
      const grads = shape.bucketBytes.slice(1).reduce((acc, bytes) => acc + ring(bytes, p, n.bw, n.alpha), 0);
      // Projections: 2 views, forward and backward, each a sum over workers of [p x b, d] float32 rows.
      const proj = 4 * ring((m.comm_proj_bytes! / 4) * (p / 2), p, n.bw, n.alpha);
      // Up to 32 workers the small sums are one exchange each (every worker's row to every
      // other: one latency, p-1 rows out of each link); past that, c10d's ring.
      const latencyBound = p <= 32 ? (p - 1) * (m.comm_bn_bytes! / n.bw) + small * n.alpha : (2 * (p - 1) / p) * (m.comm_bn_bytes! / n.bw) + small * 2 * (p - 1) * n.alpha;
      const step = compute + lossExtra + grads + proj + latencyBound;
      // The same with the small sums done in log2(p) rounds (recursive doubling, as collective
      // libraries do for small messages) instead of a ring's 2(p-1) steps.
      const latencyTree = (2 * (p - 1) / p) * (m.comm_bn_bytes! / n.bw) + small * 2 * Math.log2(p) * n.alpha;
      const stepTree = step - latencyBound + latencyTree;
      const tag = `${p}_${n.name.replace(/\W+/g, '')}`;
      console.log(
        `  p=${p} ${n.name} (latency ${n.alpha * 1e6} us): step ${step.toFixed(3)} s = compute ${compute.toFixed(3)} + larger NT-Xent ${lossExtra.toFixed(3)} + gradients ${grads.toFixed(4)} + projections ${proj.toFixed(4)} + sync-BN and figures ${latencyBound.toFixed(4)}; ` +
          `projected_efficiency_${tag}=${(compute / step).toFixed(3)}  (small sums in log2(p) rounds: ${(compute / stepTree).toFixed(3)})`,
      );
      figures[`projected_efficiency_${tag}`] = Number((compute / step).toFixed(3));
    }
  }
  figures.bytes_per_step = m.comm_bytes ?? 'n/a';
  const file = writeBenchResults('scale', figures, { data: opts.data, width: WIDTH, globalBatch: BATCH, rounds: ROUNDS, steps: STEPS, precisions: PRECISIONS, configurations: Object.fromEntries(CONFIGS.map((c) => [c, LABEL[c]])) });
  console.log(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
