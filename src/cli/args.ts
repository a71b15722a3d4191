// A small flag parser: --name value, --name=value, --flag; typed lookups with clear errors.
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export class Flags {
  private readonly values = new Map<string, string>();
  private readonly used = new Set<string>();
  readonly positional: string[] = [];

  constructor(argv: string[], booleans: string[] = []) {
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!;
      if (!arg.startsWith('--')) {
        this.positional.push(arg);
        continue;
      }
      const eq = arg.indexOf('=');
      const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
      if (eq > 0) this.values.set(name, arg.slice(eq + 1));
      else if (booleans.includes(name)) this.values.set(name, 'true');
      else {
        const next = argv[i + 1];
        if (next === undefined || next.startsWith('--')) throw new UsageError(`--${name} needs a value`);
        this.values.set(name, next);
        i++;
      }
    }
  }

  string(name: string, fallback: string): string {
    this.used.add(name);
    return this.values.get(name) ?? fallback;
  }

  number(name: string, fallback: number, { min = -Infinity, max = Infinity, integer = false } = {}): number {
    this.used.add(name);
    const raw = this.values.get(name);
    if (raw === undefined) return fallback;
    const v = Number(raw);
    if (!Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
      const kind = integer ? 'an integer' : 'a number';
      throw new UsageError(`--${name} must be ${kind}${min > -Infinity ? ` >= ${min}` : ''}${max < Infinity ? ` and <= ${max}` : ''}, got '${raw}'`);
    }
    return v;
  }

  /** One of `allowed` (fallback when absent); any other value is a usage error listing them. */
  choice<const T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const v = this.string(name, fallback);
    if (!(allowed as readonly string[]).includes(v)) {
      const list = allowed.length > 1 ? `${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}` : `${allowed[0]}`;
      throw new UsageError(`--${name} must be ${list}, got '${v}'`);
    }
    return v as T;
  }

  /** A yes/no flag (fallback when absent); any other value is a usage error. */
  yesNo(name: string, fallback: boolean): boolean {
    return this.choice(name, ['yes', 'no'], fallback ? 'yes' : 'no') === 'yes';
  }

  boolean(name: string): boolean {
    this.used.add(name);
    return this.values.get(name) === 'true';
  }

  /** Fails on flags that no lookup asked for (typos). */
  rejectUnknown(): void {
    const unknown = [...this.values.keys()].filter((k) => !this.used.has(k));
    if (unknown.length) throw new UsageError(`unknown option${unknown.length > 1 ? 's' : ''}: ${unknown.map((u) => `--${u}`).join(', ')}`);
  }
}
