// The one training loop: epochs, resume, stop signals, checkpoints, progress and metrics,
// around a named step (steps.ts). Every stage (pretraining, fine-tuning, distillation, the
// baseline) runs through it.
import * as t from '../torch';
import type { Module } from '../nn';
import type { BatchLoader, Batch } from '../data';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint, type Stateful } from './checkpoint';
import type { StopSignal } from './control';
import { Progress, formatSeconds } from './progress';
import type { RunFolder } from './run-folder';
import type { StepAt, StepResult } from './steps';
import { broadcastBuffers, weightsChecksum, type ProcessGroup } from '../distributed';

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
  /** After each epoch's checkpoint (kNN monitor, ...); with workers, on rank 0 only unless afterEpochOnEveryWorker. */
  afterEpoch?: (epoch: number, step: number) => void;
  /** With workers: afterEpoch runs on every worker (it shares its work between them through collectives). */
  afterEpochOnEveryWorker?: boolean;
  /**
   * Data-parallel workers: rank 0 alone writes the run folder (metrics, checkpoints) and
   * shows progress; a stop asked for on any worker stops all of them at the same step.
   */
  workers?: ProcessGroup | null;
  /** With workers: compare a checksum of the weights across workers after every step, and stop if they differ. */
  checkWeights?: boolean;
  /**
   * With workers: each keeps its own batch norm statistics during an epoch (local batch
   * norm), left out of the weights check; rank 0's are given to all at each epoch's end.
   */
  localStatistics?: boolean;
}

/** Lets signal handlers run between steps: the steps themselves are synchronous. */
const yieldToEvents = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Trains; returns whether the stage ran to its end (false: stopped, with a checkpoint). */
export async function trainLoop(o: LoopOptions): Promise<boolean> {
  const perEpoch = o.loader.batchesPerEpoch();
  let epoch = 0;
  let step = 0;
  let skip = 0;
  const group = o.workers && o.workers.worldSize > 1 ? o.workers : null;
  const lead = !group || group.rank === 0;
  if (o.resume && hasCheckpoint(o.run, o.stage)) {
    const meta = loadCheckpoint(o.run, o.stage, o.model, o.optimizer, { restoreRng: true });
    epoch = meta.epoch;
    step = meta.step;
    skip = meta.batch ?? 0;
    if (lead) console.log(`resuming ${o.stage} after epoch ${epoch}${skip ? `, batch ${skip}` : ''} (step ${step})`);
  }
  // epochs: completed epochs; batch: batches of the next one already done (a mid-epoch stop).
  const save = (epochs: number, batch?: number) =>
    lead && saveCheckpoint(o.run, o.stage, o.model, o.optimizer, { epoch: epochs, ...(batch ? { batch } : {}), step, stage: o.stage, config: o.config });
  // One answer for every worker: a stop on any of them stops all at the same step.
  let stopAgreed = false;
  const stopped = (): boolean => (group ? stopAgreed : Boolean(o.stop?.stopped));
  o.model.train();
  const eta = lead ? stageEta(o.stage, o.epochs, perEpoch, epoch * perEpoch + skip) : null;
  for (; epoch < o.epochs; epoch++) {
    const progress = lead ? new Progress(`${o.stage} epoch ${epoch + 1}/${o.epochs}`, perEpoch, 'img') : null;
    const started = performance.now();
    let seen = 0;
    for (let k = skip; k < perEpoch; k++) {
      if (stopped()) {
        progress?.finish();
        save(epoch, k);
        return false;
      }
      const lr = o.lrAt(step);
      let size = 0;
      // Read ahead on a worker thread for stored data sets: ready by now, or soon.
      const loaded = await o.loader.load(epoch, k);
      const result = t.tidy(() => {
        const batch = o.loader.batchFrom(loaded);
        size = batch.counts ? batch.counts.reduce((a, b) => a + b, 0) : batch.indices.length;
        return o.step(batch, { stage: o.stage, step, lr, epoch });
      });
      step++;
      seen += size;
      o.stop?.tick();
      const checks: Record<string, number> = {};
      if (group) {
        const [stops] = group.sumNumbers([o.stop?.stopped ? 1 : 0]) as [number];
        stopAgreed = stops > 0;
        if (o.checkWeights) Object.assign(checks, compareWeights(group, o.model, step, !o.localStatistics));
      }
      const extra = Object.entries(result.metrics ?? {}).map(([name, v]) => `${name.replace(/_/g, ' ')} ${v < 1 && v > 0 ? `${(v * 100).toFixed(1)}%` : v.toFixed(3)}`);
      const left = eta?.after(epoch * perEpoch + k + 1);
      progress?.update(k + 1, seen, [`loss ${result.loss.toFixed(3)}`, ...extra, ...(left ? [left] : [])].join(' '));
      if (lead) o.run.metric({ stage: o.stage, epoch: epoch + 1, step, loss: result.loss, ...result.metrics, lr, images_per_s: seen / ((performance.now() - started) / 1000), ...(group ? { workers: group.worldSize } : {}), ...checks });
      await yieldToEvents();
    }
    progress?.finish();
    skip = 0;
    // Local batch norm: every worker evaluates, and a later stage starts, with rank 0's statistics (the saved ones).
    if (group && o.localStatistics) broadcastBuffers(group, o.model);
    save(epoch + 1);
    // A stop asked for during the epoch's last step: the epoch is saved; skip the monitor.
    if (stopped()) return epoch + 1 >= o.epochs;
    if (o.afterEpoch && (lead || o.afterEpochOnEveryWorker)) {
      o.afterEpoch(epoch + 1, step);
      o.model.train();
    }
  }
  return true;
}

/**
 * The whole stage's time left, for the progress line, and once, after its first steps
 * (ten seconds or twenty steps), the duration it will take at that speed.
 */
function stageEta(stage: string, epochs: number, perEpoch: number, firstStep: number): { after(done: number): string } {
  const total = epochs * perEpoch;
  const started = performance.now();
  let told = false;
  return {
    after(done: number): string {
      const seconds = (performance.now() - started) / 1000;
      const steps = done - firstStep;
      if (steps <= 0 || done >= total) return '';
      const left = (seconds / steps) * (total - done);
      if (!told && (seconds >= 10 || steps >= 20)) {
        told = true;
        if (seconds + left >= 30) console.log(`${stage}: about ${formatSeconds(seconds + left)} ${firstStep ? 'to its end' : 'in all'} at this speed (${epochs} epoch${epochs === 1 ? '' : 's'} of ${perEpoch} step${perEpoch === 1 ? '' : 's'})`);
      }
      return epochs > 1 ? `(stage: ${formatSeconds(left)} left)` : '';
    },
  };
}

/** Every worker's checksum of the weights and buffers, compared with rank 0's; throws naming the ranks that differ. */
function compareWeights(group: ProcessGroup, model: Module, step: number, withBuffers: boolean): Record<string, number> {
  const tensors = [...model.parameters(), ...(withBuffers ? model.namedBuffers().map(([, b]) => b) : [])];
  const mine = weightsChecksum(tensors);
  const all = t.tidy(() => group.allGather(t.tensor(Float64Array.from(mine), [1, 2], { dtype: 'float64' })).toArray());
  const differ = [];
  for (let r = 1; r < group.worldSize; r++) if (all[2 * r] !== all[0] || all[2 * r + 1] !== all[1]) differ.push(r);
  if (differ.length) throw new Error(`after step ${step}, the weights of rank${differ.length > 1 ? 's' : ''} ${differ.join(', ')} differ from rank 0's (checksums ${all.join(', ')})`);
  return { weights_checksum: mine[0], weights_checked: group.worldSize };
}
