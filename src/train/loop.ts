// The one training loop: epochs, resume, stop signals, checkpoints, progress and metrics,
// around a named step (steps.ts). Every stage (pretraining, fine-tuning, distillation, the
// baseline) runs through it.
import * as t from '../torch';
import type { Module } from '../nn';
import type { BatchLoader, Batch } from '../data';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint, type Stateful } from './checkpoint';
import type { StopSignal } from './control';
import { Progress } from './progress';
import type { RunFolder } from './run-folder';
import type { StepAt, StepResult } from './steps';

export interface LoopOptions {
  /** Stage name: the checkpoint's file name and the metrics' stage. */
  stage: string;
  run: RunFolder;
  model: Module;
  optimizer: Stateful;
  loader: BatchLoader;
  epochs: number;
  /** Learning rate at a step. */
  lrAt: (step: number) => number;
  /** One batch: called inside a scope that owns the batch's tensors. */
  step: (batch: Batch, at: StepAt) => StepResult;
  /** Saved with every checkpoint (settings, architecture). */
  config: unknown;
  resume?: boolean;
  stop?: StopSignal;
  /** After each epoch's checkpoint (kNN monitor, ...). */
  afterEpoch?: (epoch: number, step: number) => void;
}

/** Lets signal handlers run between steps: the steps themselves are synchronous. */
const yieldToEvents = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Trains; returns whether the stage ran to its end (false: stopped, with a checkpoint). */
export async function trainLoop(o: LoopOptions): Promise<boolean> {
  const perEpoch = o.loader.batchesPerEpoch();
  let epoch = 0;
  let step = 0;
  let skip = 0;
  if (o.resume && hasCheckpoint(o.run, o.stage)) {
    const meta = loadCheckpoint(o.run, o.stage, o.model, o.optimizer, { restoreRng: true });
    epoch = meta.epoch;
    step = meta.step;
    skip = meta.batch ?? 0;
    console.log(`resuming ${o.stage} after epoch ${epoch}${skip ? `, batch ${skip}` : ''} (step ${step})`);
  }
  // epochs: completed epochs; batch: batches of the next one already done (a mid-epoch stop).
  const save = (epochs: number, batch?: number) => saveCheckpoint(o.run, o.stage, o.model, o.optimizer, { epoch: epochs, ...(batch ? { batch } : {}), step, stage: o.stage, config: o.config });
  o.model.train();
  for (; epoch < o.epochs; epoch++) {
    const progress = new Progress(`${o.stage} epoch ${epoch + 1}/${o.epochs}`, perEpoch, 'img');
    const started = performance.now();
    let seen = 0;
    for (let k = skip; k < perEpoch; k++) {
      if (o.stop?.stopped) {
        progress.finish();
        save(epoch, k);
        return false;
      }
      const lr = o.lrAt(step);
      let size = 0;
      const result = t.tidy(() => {
        const batch = o.loader.batch(epoch, k);
        size = batch.indices.length;
        return o.step(batch, { stage: o.stage, step, lr });
      });
      step++;
      seen += size;
      o.stop?.tick();
      const extra = Object.entries(result.metrics ?? {}).map(([name, v]) => `${name.replace(/_/g, ' ')} ${v < 1 && v > 0 ? `${(v * 100).toFixed(1)}%` : v.toFixed(3)}`);
      progress.update(k + 1, seen, [`loss ${result.loss.toFixed(3)}`, ...extra].join(' '));
      o.run.metric({ stage: o.stage, epoch: epoch + 1, step, loss: result.loss, ...result.metrics, lr, images_per_s: seen / ((performance.now() - started) / 1000) });
      await yieldToEvents();
    }
    progress.finish();
    skip = 0;
    save(epoch + 1);
    // A stop asked for during the epoch's last step: the epoch is saved; skip the monitor.
    if (o.stop?.stopped) return epoch + 1 >= o.epochs;
    if (o.afterEpoch) {
      o.afterEpoch(epoch + 1, step);
      o.model.train();
    }
  }
  return true;
}
