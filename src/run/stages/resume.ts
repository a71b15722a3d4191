// Resuming with the same plan: the command that started a stage, plus --resume, continues it;
// a setting given with another value than the recorded one is refused, naming both.
import { PlanError } from '../errors';

// ------------------------------------------------------------------ resuming with the same plan

/** A plan key as the command line spells it. */
const FLAG_NAMES: Readonly<Record<string, string>> = { spec: 'data', test: 'test-data' };
export const kebab = (name: string): string => (Object.hasOwn(FLAG_NAMES, name) ? FLAG_NAMES[name]! : name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`));

/**
 * The given settings that differ from the recorded ones, as `--name (recorded X, given Y)`.
 * A setting the record does not hold was unset (its default), so giving it is a change too.
 */
export function differences(recorded: Record<string, unknown> | undefined, given: Record<string, unknown>, ignore: ReadonlySet<string> = new Set()): string[] {
  if (!recorded) return [];
  const out: string[] = [];
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined || ignore.has(key)) continue;
    const was = Object.hasOwn(recorded, key) && recorded[key] !== null ? JSON.stringify(recorded[key]) : 'unset';
    if (was !== JSON.stringify(value)) out.push(`--${kebab(key)} (recorded ${was}, given ${JSON.stringify(value)})`);
  }
  return out;
}

/** Recorded settings with the defaults of those added since they were recorded (a run made before --batch-norm trained with its default). */
export function withLaterDefaults<T extends object>(recorded: T | undefined, defaults: T): Record<string, unknown> | undefined {
  return recorded ? ({ ...defaults, ...recorded } as Record<string, unknown>) : undefined;
}

export function refuseDifferences(where: string, diffs: string[]): void {
  if (diffs.length) throw new PlanError(`${where}: --resume continues the run with its recorded settings, and these differ: ${diffs.join(', ')}`);
}

/** The options an object really sets (undefined ones left out, so defaults stay). */
export function defined<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}
