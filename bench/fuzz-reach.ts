// How far the fuzz gets into each op: a parameter counts as reached once a call got to its
// check (the addon's TypeError named it or a later parameter) or past every check (the op
// returned, or threw from libtorch or c10d instead of from its argument checks).

/** Whether a call got past its argument checks: `error` is what it threw (undefined: it returned). */
export function pastArgumentChecks(op: string, error: unknown): boolean {
  if (error === undefined) return true;
  const message = error instanceof Error ? error.message : '';
  // A getter's own error (thrown while the addon snapshots the arguments) has no op prefix.
  if (!message.startsWith(`${op}: `)) return false;
  return !message.startsWith(`${op}: argument '`) && !message.startsWith(`${op}: expected at most`);
}

export class Reach {
  private readonly reached = new Map<string, Set<string>>();

  /** Notes what the call reached; returns whether it got past the argument checks. */
  record(op: string, params: readonly { name: string }[], error: unknown): boolean {
    const past = pastArgumentChecks(op, error);
    let upTo = past ? params.length - 1 : -1;
    if (!past && error instanceof Error) {
      const named = new RegExp(`^${op}: argument '([^']+)'`).exec(error.message)?.[1];
      if (named !== undefined) upTo = params.findIndex((p) => p.name === named);
    }
    if (upTo < 0) return past;
    let set = this.reached.get(op);
    if (!set) this.reached.set(op, (set = new Set()));
    for (let i = 0; i <= upTo; i++) set.add(params[i]!.name);
    return past;
  }

  /** 'op.param' for every parameter reached. */
  names(): string[] {
    return [...this.reached].flatMap(([op, set]) => [...set].map((p) => `${op}.${p}`)).sort();
  }
}
