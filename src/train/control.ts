// Stopping cleanly: Ctrl-C or SIGTERM (what Slurm and Kubernetes send) finishes the current
// step and saves a mid-epoch checkpoint; NaN losses stop with the step named.

/** The exit status of a run a signal stopped: 143 for SIGTERM, else 130 (Ctrl-C's). */
export function signalExitCode(signal: string | null): number {
  return signal === 'SIGTERM' ? 143 : 130;
}

export class StopSignal {
  stopped = false;
  /** The signal that asked to stop (null: none, or SIMCLR_STOP_AFTER_STEPS). */
  signal: NodeJS.Signals | null = null;
  private steps = 0;
  // SIMCLR_STOP_AFTER_STEPS=N behaves as a Ctrl-C after N steps: how tests stop a run at a known point.
  private readonly stopAfter = Number(process.env.SIMCLR_STOP_AFTER_STEPS ?? 0);

  /** Counts a finished step. */
  tick(): void {
    this.steps++;
    if (this.stopAfter > 0 && this.steps >= this.stopAfter) this.stopped = true;
  }

  // The loop yields to the event loop between steps, so these run within one step.
  private readonly handler = (signal: NodeJS.Signals): void => {
    if (this.stopped) process.exit(signalExitCode(signal));
    this.stopped = true;
    this.signal = signal;
    process.stderr.write(`\n${signal}: stopping after this step and saving a checkpoint (${signal === 'SIGINT' ? 'Ctrl-C' : 'the signal'} again to quit at once)\n`);
  };
  listen(): this {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
    return this;
  }
  close(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }

  /** The exit status for a run this signal stopped. */
  get exitCode(): number {
    return signalExitCode(this.signal);
  }
}

// One signal for everything running in this process, held while any stage or pipeline runs,
// so that a Ctrl-C between two stages of a pipeline stops the pipeline rather than being lost.
let shared: StopSignal | null = null;
let holders = 0;
let last: StopSignal | null = null;

/** The process's stop signal, listening while at least one holder has it. */
export function holdStopSignal(): StopSignal {
  if (holders++ === 0) shared = new StopSignal().listen();
  return shared!;
}

export function releaseStopSignal(): void {
  if (--holders === 0 && shared) {
    shared.close();
    last = shared;
    shared = null;
  }
}

/** The exit status after a stop (130, or 143 when SIGTERM asked). */
export function stopExitCode(): number {
  return (shared ?? last)?.exitCode ?? 130;
}

export class NonFiniteLossError extends Error {
  constructor(
    readonly stage: string,
    readonly step: number,
    what: 'loss' | 'weights' = 'loss',
  ) {
    super(`${stage}: the ${what} became NaN or infinite at step ${step}; stopped, and kept the last good checkpoint (try a lower --lr)`);
    this.name = 'NonFiniteLossError';
  }
}
