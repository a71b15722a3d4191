// Errors a user fixes by changing what they asked for (a folder that is not a run, a stage
// not trained yet, settings that differ from the run's): the command line exits 2 on these.
export class PlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanError';
  }
}
