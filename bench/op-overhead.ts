// Per-call overhead of a tiny op (add of two 1-element tensors) from TypeScript, against
// the same call from Python PyTorch, interleaved in one run, both with the same allocator
// variables (./same-env).
import { ALLOCATOR, allocatorLine } from './same-env'; // first: re-runs us with the allocator variables the peer also gets
import * as t from '../src';

// OpenBLAS's kernels as `simclr` picks them, before libtorch loads; a peer spawned after this
// inherits OPENBLAS_CORETYPE, so both sides multiply with the same kernels. The allocator
// comes from the environment on both sides (same-env.ts), or from tuneProcess where no peer runs.
t.tuneProcess({ allocator: false });
import { PyTorchPeer, median, roundsSummary } from './peer';
import { writeBenchResults } from './results-file';

const CALLS = Number(process.env.CALLS ?? 200_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);

async function main(): Promise<void> {
  t.setNumThreads(1);
  const a = t.ones([1]);
  const b = t.ones([1]);
  // Each result is freed at once (as Python's refcount does), inside a scope, which is how
  // simclr-ts code runs its loops; `outside` measures a loop with no scope open, where
  // each tensor also joins the GC safety net.
  const ours = (calls: number): number =>
    t.tidy(() => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < calls; i++) a.add(b).dispose();
      return Number(process.hrtime.bigint() - t0) / 1e9;
    });
  const outside = (calls: number): number => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) a.add(b).dispose();
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  const peer = new PyTorchPeer();
  const info = await peer.call<{ torch: string }>({ op: 'info' });
  ours(20_000);
  await peer.call({ op: 'tiny_add', calls: 20_000, threads: 1 });
  const oursNs: number[] = [];
  const outsideNs: number[] = [];
  const theirsNs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    oursNs.push((ours(CALLS) / CALLS) * 1e9);
    outsideNs.push((outside(CALLS) / CALLS) * 1e9);
    theirsNs.push((((await peer.call({ op: 'tiny_add', calls: CALLS, threads: 1 })).seconds!) / CALLS) * 1e9);
    console.log(`round ${r + 1}: simclr-ts ${oursNs.at(-1)!.toFixed(0)} ns/call, pytorch ${theirsNs.at(-1)!.toFixed(0)} ns/call`);
  }
  peer.close();
  const ratio = median(theirsNs) / median(oursNs);
  console.log(`tiny op (add, 1-element tensors), ${ROUNDS}x${CALLS} calls each, interleaved`);
  console.log(`simclr-ts: ${median(oursNs).toFixed(0)} ns/call in a scope, ${median(outsideNs).toFixed(0)} ns/call outside any scope (median); pytorch ${info.torch}: ${median(theirsNs).toFixed(0)} ns/call`);
  console.log(allocatorLine());
  console.log(`op_overhead_speedup_vs_pytorch=${ratio.toFixed(3)}  (>= 1 means ours is no slower)`);
  const figures = {
    op_overhead_speedup_vs_pytorch: Number(ratio.toFixed(3)),
    op_overhead_ns_per_call_simclr_ts: Math.round(median(oursNs)),
    op_overhead_ns_per_call_simclr_ts_outside_scope: Math.round(median(outsideNs)),
    op_overhead_ns_per_call_pytorch: Math.round(median(theirsNs)),
  };
  for (const [name, value] of Object.entries(figures).slice(1)) console.log(`${name}=${value}`);
  const file = writeBenchResults('overhead', figures, {
    op: 'add of two 1-element float32 tensors, 1 thread',
    calls: CALLS, rounds: ROUNDS, allocator: ALLOCATOR, peer: { torch: info.torch },
    nsPerCall: { simclrTs: roundsSummary(oursNs, 0), simclrTsOutsideScope: roundsSummary(outsideNs, 0), pytorch: roundsSummary(theirsNs, 0) },
  });
  console.log(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
