// Where a worker stands, from the environment a torchrun-style launcher sets (MASTER_ADDR,
// MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK), as `simclr --nproc` sets it for its own
// workers and as Slurm scripts and Kubernetes' PyTorchJob do.

export interface WorkerEnv {
  masterAddr: string;
  masterPort: number;
  worldSize: number;
  rank: number;
  localRank: number;
  /** LOCAL_WORLD_SIZE when set (workers on this machine), else undefined. */
  localWorldSize?: number;
}

/** A wrong worker variable: the message names it and its value. */
export class WorkerEnvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerEnvError';
  }
}

const NAMES = ['MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK', 'LOCAL_RANK'] as const;

function int(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number {
  const text = env[name]!.trim();
  const v = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(v >= min && v <= max)) throw new WorkerEnvError(`${name}=${env[name]} must be an integer from ${min} to ${max}`);
  return v;
}

/**
 * The worker's place, or null when WORLD_SIZE is unset (one process, no workers). With
 * WORLD_SIZE set, RANK, MASTER_ADDR and MASTER_PORT must be set too (LOCAL_RANK defaults
 * to RANK).
 */
export function workerEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv | null {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === '') return null;
  const missing = NAMES.filter((n) => n !== 'LOCAL_RANK' && (env[n] === undefined || env[n] === ''));
  if (missing.length) {
    throw new WorkerEnvError(`WORLD_SIZE=${env.WORLD_SIZE} is set, so this is one of several workers, but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not (a launcher such as torchrun sets all of ${NAMES.join(', ')})`);
  }
  const worldSize = int(env, 'WORLD_SIZE', 1, 1 << 20);
  const rank = int(env, 'RANK', 0, worldSize - 1);
  const masterPort = int(env, 'MASTER_PORT', 1, 65535);
  const localRank = env.LOCAL_RANK ? int(env, 'LOCAL_RANK', 0, worldSize - 1) : envLocalRank(env);
  const localWorldSize = env.LOCAL_WORLD_SIZE ? int(env, 'LOCAL_WORLD_SIZE', 1, worldSize) : undefined;
  const masterAddr = env.MASTER_ADDR!.trim();
  return { masterAddr, masterPort, worldSize, rank, localRank, ...(localWorldSize ? { localWorldSize } : {}) };
}

/** The variables a launcher gives worker `rank` of `worldSize` on this machine. */
export function envForWorker(w: WorkerEnv): Record<string, string> {
  return {
    MASTER_ADDR: w.masterAddr,
    MASTER_PORT: String(w.masterPort),
    WORLD_SIZE: String(w.worldSize),
    RANK: String(w.rank),
    LOCAL_RANK: String(w.localRank),
    ...(w.localWorldSize ? { LOCAL_WORLD_SIZE: String(w.localWorldSize) } : {}),
  };
}

/**
 * This worker's local rank as the environment gives it without checking the rest:
 * LOCAL_RANK (set by our launcher and torchrun), else Slurm's or Open MPI's; 0 without
 * one or for a value that is not a rank.
 */
export function envLocalRank(env: NodeJS.ProcessEnv = process.env): number {
  // The local rank as launchers name it (torchrun, Slurm, Open MPI), never the global RANK:
  // on a second node that would name a GPU this machine may not have.
  const local = Number(env.LOCAL_RANK || env.SLURM_LOCALID || env.OMPI_COMM_WORLD_LOCAL_RANK || '0');
  return Number.isInteger(local) && local >= 0 ? local : 0;
}

/** --device as libtorch names it: 'cuda' alone is the GPU of this worker's local rank, as torchrun's users expect. */
export function workerDevice(given = 'cpu', env: NodeJS.ProcessEnv = process.env): string {
  return given === 'cuda' ? `cuda:${envLocalRank(env)}` : given;
}
