// Where a data-parallel step's communication goes, for `npm run bench:scale`
// (SIMCLR_PROFILE_COLLECTIVES=1 adds these figures to each step's metrics): the time this
// worker stood waiting in collectives, and the bytes it handed to them, split by what
// they carried. Synchronized batch norm has its own counter; the gathered projections are
// the sums with gradient made while the loss is computed, each with a backward twin of the
// same size (the gradient of a sum over workers is one).
import type { DistCounters } from '../torch/native';
import type { ProcessGroup } from './group';

export function profileFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.SIMCLR_PROFILE_COLLECTIVES === '1';
}

const total = (c: DistCounters): number => c.allReduceBytes + c.allGatherBytes + c.broadcastBytes + c.sumWithGradBytes + c.gradientBytes + c.syncBatchNormBytes;

export class CollectiveProbe {
  private readonly marks: DistCounters[];

  constructor(private readonly group: ProcessGroup) {
    this.marks = [group.counters()];
  }

  /** Call after the forward pass, after the loss, and at the end of the step. */
  mark(): void {
    this.marks.push(this.group.counters());
  }

  /** Figures for the metrics: seconds waiting, bytes in all, and per kind. */
  metrics(): Record<string, number> {
    const [start, forward, loss, end] = this.marks;
    if (!start || !forward || !loss || !end) throw new Error('CollectiveProbe: mark() after the forward pass, the loss and the step');
    return {
      collective_s: (end.waitMs - start.waitMs) / 1000,
      collectives: end.collectives - start.collectives,
      comm_bytes: total(end) - total(start),
      comm_bn_bytes: end.syncBatchNormBytes - start.syncBatchNormBytes + 2 * (forward.sumWithGradBytes - start.sumWithGradBytes),
      comm_proj_bytes: 2 * (loss.sumWithGradBytes - forward.sumWithGradBytes),
      comm_grad_bytes: end.gradientBytes - loss.gradientBytes + (end.allReduceBytes - loss.allReduceBytes),
    };
  }
}
