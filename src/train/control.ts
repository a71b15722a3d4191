// Stopping cleanly: Ctrl-C finishes the current step and saves; NaN losses stop with the step named.

export class StopSignal {
  stopped = false;
  private readonly handler = (): void => {
    if (this.stopped) process.exit(130);
    this.stopped = true;
    process.stderr.write('\nstopping after this step and saving a checkpoint (Ctrl-C again to quit at once)\n');
  };
  listen(): this {
    process.on('SIGINT', this.handler);
    return this;
  }
  close(): void {
    process.off('SIGINT', this.handler);
  }
}

export class NonFiniteLossError extends Error {
  constructor(
    readonly stage: string,
    readonly step: number,
  ) {
    super(`${stage}: the loss became NaN or infinite at step ${step}; stopped, and kept the last good checkpoint (try a lower --lr)`);
    this.name = 'NonFiniteLossError';
  }
}
