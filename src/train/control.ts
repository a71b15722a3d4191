// Stopping cleanly: Ctrl-C or SIGTERM (what Slurm and Kubernetes send) finishes the current
// step and saves a mid-epoch checkpoint; NaN losses stop with the step named.

export class StopSignal {
  stopped = false;
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
    if (this.stopped) process.exit(signal === 'SIGTERM' ? 143 : 130);
    this.stopped = true;
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
