// How a run computes: a plan's compute settings applied to this process, and a resume under
// other settings than the recorded ones refused unless forced.
import * as t from '../../torch';
import { workerDevice } from '../../distributed/env';
import { PlanError } from '../errors';
import type { RecordedCompute } from '../folder';
import type { ComputePlan } from './types';

// ------------------------------------------------------------------ compute

/** Applies a plan's compute settings to this process and returns them as a run records them. */
export function applyCompute(c: ComputePlan = {}): RecordedCompute {
  const settings = t.useCompute({ precision: c.precision ?? 'auto', channelsLast: c.channelsLast ?? 'auto', device: workerDevice(c.device) });
  if (c.threads !== undefined) t.setNumThreads(c.threads);
  return { precision: settings.precision, channelsLast: settings.channelsLast, threads: t.getNumThreads(), ...(settings.device !== 'cpu' ? { device: settings.device } : {}) };
}

export const describeCompute = (c: RecordedCompute): string => `--precision ${c.precision} --channels-last ${c.channelsLast ? 'on' : 'off'} --threads ${c.threads}`;

/** Refuses to continue a stage under other compute settings than it was trained with, unless forced. */
export function checkCompute(where: string, recorded: RecordedCompute | undefined, now: RecordedCompute, force = false): void {
  if (!recorded || force) return;
  const differs = recorded.precision !== now.precision || recorded.channelsLast !== now.channelsLast || recorded.threads !== now.threads;
  if (differs) {
    throw new PlanError(`${where} was trained with ${describeCompute(recorded)}; this process has ${describeCompute(now)}. ` + 'Resume with the recorded settings, or pass --force-settings to continue under these.');
  }
}

