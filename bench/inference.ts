// The encoder's inference forward (pooled features of a batch) through simclr-ts's one
// evaluation path (src/nn/inference.ts: eval mode, batch norm folded once, no autograd,
// channels-last, bfloat16 weights cast once where the precision is bf16), against, in the
// same run and interleaved:
//  - PyTorch eager, tuned: eval mode, inference_mode, channels-last, the same threads and
//    allocator, bf16 autocast for the bf16 rows (bench/py/inference.py);
//  - PyTorch frozen: torch.jit.freeze + optimize_for_inference (batch norm folded, oneDNN
//    layouts, fused ReLUs), the careful user's choice; its oneDNN path is float32, and its
//    bf16 row is a model converted with .bfloat16() before freezing;
//  - onnxruntime-node on our ONNX export, in a process of its own (float32 only; the graph
//    also holds the normalisation and a 10-class linear layer, a few hundredths of a percent
//    of the work).
// Cases: ResNet-18 with the CIFAR stem at 32 px (batch 256), ResNet-50 at 224 px (batch 32).
// Prints inference_ratio_vs_pytorch_<model>_<precision>= (eager) and
// inference_ratio_vs_pytorch_frozen_<model>_<precision>=, each the peer's seconds over ours
// per round (above 1: we are faster), median and spread; writes bench/results/inference.json.
import { ALLOCATOR, allocatorLine } from './same-env'; // first: re-runs us with the allocator variables
import { writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as t from '../src';

t.tuneProcess({ allocator: false });
import { classifierToOnnx } from '../src/export';
import { PyTorchPeer, median, spread } from './peer';
import { writeBenchResults } from './results-file';

const THREADS = Number(process.env.THREADS ?? 2);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const NORM = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };

interface Case {
  model: string;
  depth: 18 | 50;
  size: number;
  batch: number;
  steps: number;
}

const ALL_CASES: Case[] = [
  { model: 'resnet18_32px', depth: 18, size: 32, batch: 256, steps: 2 },
  { model: 'resnet50_224px', depth: 50, size: 224, batch: 32, steps: 1 },
];
/** MODELS=resnet50_224px runs one case (the results file then holds only it). */
const CASES = ALL_CASES.filter((c) => !process.env.MODELS || process.env.MODELS.split(',').includes(c.model));
const PRECISIONS = (process.env.PRECISIONS ?? 'fp32,bf16').split(',');

type Side = { label: string; seconds: () => Promise<number> };

const secondsOf = (fn: () => void): number => {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
};

/** Ours: the encoder held for inference (folded once, as predict, serve and the teacher hold it). */
function oursSide(c: Case): { side: Side; params: number; dispose: () => void } {
  t.manualSeed(0);
  const model = t.resnet({ depth: c.depth, imageSize: c.size });
  const release = t.nn.holdForInference(model);
  const x = t.keep(t.randn([c.batch, 3, c.size, c.size]));
  const once = (): void => t.nn.inference(model, (forward) => t.tidy(() => void forward(x).data()));
  once();
  once();
  const side = {
    label: 'simclr-ts',
    seconds: async () => {
      let s = 0;
      for (let i = 0; i < c.steps; i++) s += secondsOf(once);
      return s;
    },
  };
  return { side, params: model.parameterCount(), dispose: () => (release(), x.dispose(), model.dispose()) };
}

/** onnxruntime-node (in a process of its own: bench/ort-peer.ts) on our exported classifier, float32 pixels in. */
async function ortSide(c: Case): Promise<{ side: Side; close: () => void }> {
  t.manualSeed(0);
  const classifier = new t.Classifier(new t.SimCLRModel({ encoder: { depth: c.depth, cifarStem: c.size <= 32 } }), 10, { fineTuneFrom: 0 });
  const file = join(tmpdir(), `simclr-bench-${process.pid}.onnx`);
  writeFileSync(file, classifierToOnnx(classifier, { imageSize: c.size, channels: 3, norm: NORM, classes: Array.from({ length: 10 }, (_, i) => `c${i}`), input: 'float' }));
  classifier.dispose();
  const peer = new PyTorchPeer('same', 'onnxruntime', [process.execPath, join(__dirname, 'ort-peer.js')]);
  try {
    const init = await peer.call<{ version: string }>({ op: 'init', file, shape: [c.batch, 3, c.size, c.size], threads: THREADS });
    ortVersion = init.version;
  } finally {
    rmSync(file, { force: true });
  }
  return { side: { label: 'onnxruntime', seconds: async () => (await peer.call<{ seconds: number }>({ op: 'run', steps: c.steps })).seconds }, close: () => peer.close() };
}

let ortVersion = 'n/a';

async function peerSide(peer: PyTorchPeer, c: Case, precision: string, mode: 'eager' | 'frozen', params: number): Promise<Side> {
  const name = `${c.model}_${precision}_${mode}`;
  const init = await peer.call<{ params: number }>({ op: 'infer_init', name, depth: c.depth, size: c.size, batch: c.batch, threads: THREADS, precision, channels_last: true, mode });
  if (init.params !== params) console.log(`WARNING: ${name} has ${init.params} parameters, ours ${params}`);
  return { label: `pytorch ${mode}`, seconds: async () => (await peer.call<{ seconds: number }>({ op: 'infer_run', name, steps: c.steps })).seconds };
}

/** Runs the sides in rounds, the order rotated each round; seconds per side per round (after one unrecorded round). */
async function rounds(sides: Side[]): Promise<number[][]> {
  // Warm-up: every side once more now that all are loaded (our first forward after the
  // peers had loaded theirs ran at half speed).
  for (const s of sides) await s.seconds();
  const out = sides.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < sides.length; i++) {
      const k = (i + r) % sides.length;
      out[k]!.push(await sides[k]!.seconds());
    }
    console.log(`  round ${r + 1}: ` + sides.map((s, k) => `${s.label} ${out[k]!.at(-1)!.toFixed(3)} s`).join(', '));
  }
  return out;
}

async function main(): Promise<void> {
  t.setNumThreads(THREADS);
  const bf16 = t.resolveCompute({}).precision === 'bf16';
  console.log(`${allocatorLine()}; ${THREADS} threads; ${ROUNDS} rounds, interleaved`);
  const peer = new PyTorchPeer('same', 'pytorch');
  const info = await peer.call<{ torch: string }>({ op: 'info' });
  const figures: Record<string, number | string> = {};
  const rows: Record<string, unknown>[] = [];
  for (const c of CASES) {
    for (const precision of PRECISIONS.filter((p) => bf16 || p === 'fp32')) {
      t.useCompute({ precision: precision as 'fp32' | 'bf16', channelsLast: 'on' });
      const ours = oursSide(c);
      const sides = [ours.side, await peerSide(peer, c, precision, 'eager', ours.params), await peerSide(peer, c, precision, 'frozen', ours.params)];
      const ort = precision === 'fp32' ? await ortSide(c) : null;
      if (ort) sides.push(ort.side);
      const times = await rounds(sides);
      ort?.close();
      ours.dispose();
      const rate = (s: number[]): number => (c.batch * c.steps) / median(s);
      const key = `${c.model}_${precision}`;
      const row: Record<string, unknown> = { model: c.model, precision, batch: c.batch };
      console.log(`${c.model}, ${precision}, batch ${c.batch}: ` + sides.map((s, i) => `${s.label} ${rate(times[i]!).toFixed(1)} img/s`).join('; '));
      figures[`inference_images_per_second_${key}`] = Number(rate(times[0]!).toFixed(1));
      sides.slice(1).forEach((s, j) => {
        const ratios = times[j + 1]!.map((x, r) => x / times[0]![r]!);
        const name = s.label === 'pytorch eager' ? `inference_ratio_vs_pytorch_${key}` : s.label === 'pytorch frozen' ? `inference_ratio_vs_pytorch_frozen_${key}` : `inference_ratio_vs_onnxruntime_${key}`;
        figures[name] = Number(median(ratios).toFixed(3));
        figures[`${name}_spread`] = spread(ratios);
        row[s.label] = { images_per_second: Number(rate(times[j + 1]!).toFixed(1)), ratio: figures[name], spread: figures[`${name}_spread`] };
        console.log(`${name}=${median(ratios).toFixed(3)}  (spread ${spread(ratios)})`);
      });
      rows.push(row);
    }
  }
  peer.close();
  const file = writeBenchResults('inference', figures, { threads: THREADS, rounds: ROUNDS, allocator: ALLOCATOR, peers: { torch: info.torch, onnxruntime: ortVersion }, rows });
  console.log(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
