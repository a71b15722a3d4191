// onnxruntime-node in a process of its own for bench/inference.ts, answering one JSON line
// per command as bench/py/peer.py does: in the bench's own process its thread pool and
// arena slowed the next side's forward by up to half.
import { createInterface } from 'node:readline';
import * as ort from 'onnxruntime-node';

let run: (() => Promise<number>) | null = null;

async function answer(cmd: { op: string; file?: string; shape?: number[]; threads?: number; steps?: number }): Promise<object> {
  if (cmd.op === 'init') {
    // No spinning: idle threads would busy-wait on the cores the other sides run on.
    const session = await ort.InferenceSession.create(cmd.file!, {
      intraOpNumThreads: cmd.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    });
    const shape = cmd.shape!;
    const pixels = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => Math.random());
    const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', pixels, shape) };
    await session.run(feeds);
    await session.run(feeds);
    run = async () => {
      const t0 = performance.now();
      await session.run(feeds);
      return (performance.now() - t0) / 1000;
    };
    return { ok: true, version: ort.env.versions.common };
  }
  if (cmd.op === 'run' && run) {
    let seconds = 0;
    for (let i = 0; i < (cmd.steps ?? 1); i++) seconds += await run();
    return { seconds };
  }
  return { error: `unknown op ${cmd.op}` };
}

async function main(): Promise<void> {
  for await (const line of createInterface({ input: process.stdin })) {
    const out = await answer(JSON.parse(line) as { op: string }).catch((e: Error) => ({ error: e.message }));
    process.stdout.write(`${JSON.stringify(out)}\n`);
  }
}

void main();
