// The workers a command runs on: joined from the environment (--nproc, or a launcher's
// WORLD_SIZE/RANK/MASTER_ADDR/MASTER_PORT) for the length of one command, or the group a
// pipeline already holds, so that every stage of a pipeline runs in the same group.
import { joinWorkers, leaveWorkers, workerEnv, WorkerEnvError, type ProcessGroup } from '../distributed';
import { PlanError } from './errors';

/** Workers to run on: undefined joins those the environment names (none without WORLD_SIZE); null or a group is used as given. */
export type WorkersPlan = ProcessGroup | null | undefined;

export function joinWorkersOrExplain(): ProcessGroup | null {
  try {
    return joinWorkers();
  } catch (e) {
    if (e instanceof WorkerEnvError) throw new PlanError(e.message);
    throw e;
  }
}

/**
 * Runs `body` on the given workers, or on those the environment names: joined here, and
 * left at the end (after a barrier when it succeeded, so rank 0 keeps the rendezvous
 * until every worker is done).
 */
export async function withWorkers<T>(given: WorkersPlan, body: (workers: ProcessGroup | null) => Promise<T>): Promise<T> {
  if (given !== undefined) return body(given && given.worldSize > 1 ? given : null);
  const workers = joinWorkersOrExplain();
  let ok = false;
  try {
    const out = await body(workers && workers.worldSize > 1 ? workers : null);
    ok = true;
    return out;
  } finally {
    leaveWorkers(workers, ok);
  }
}

/** Rank 0, or the only process: the one that writes the run folder and talks. */
export const isLead = (workers: ProcessGroup | null | undefined): boolean => !workers || workers.rank === 0;

/** Whether to stop: asked on any worker stops all of them (a signal can reach them at different moments). */
export function stopAgreed(stop: { stopped: boolean }, workers: ProcessGroup | null | undefined): boolean {
  if (!workers || workers.worldSize === 1) return stop.stopped;
  const [asked] = workers.sumNumbers([stop.stopped ? 1 : 0]) as [number];
  return asked > 0;
}

/** Whether this process is rank 0 of the workers the environment names, or has none: the one that prints. */
export function leadProcess(env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    return (workerEnv(env)?.rank ?? 0) === 0;
  } catch {
    return true; // a wrong environment is reported by the command itself
  }
}
