// One description of a command's options, from which the parser, `simclr <command> --help`
// and the README's option lists all come. Tokens are read by node:util's parseArgs; this
// module adds the types, defaults, allowed values and the error messages users see.
import { parseArgs } from 'node:util';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type OptionKind = 'string' | 'number' | 'integer' | 'boolean';

export interface OptionSpec {
  readonly type: OptionKind;
  /** One line of help. */
  readonly help: string;
  /** The value when the option is absent; leave out where the default is computed (see defaultText). */
  readonly default?: string | number | boolean;
  /** How help describes a computed default ("0.5 at 32px or less, else 0.1"). */
  readonly defaultText?: string;
  /** The only values allowed (string options). */
  readonly choices?: readonly string[];
  /** Numbers: the allowed range, inclusive. */
  readonly min?: number;
  readonly max?: number;
  /** Why the range is what it is, said when a value is out of it. */
  readonly rangeWhy?: string;
  /** Numbers: 'auto' is accepted too (the value is then the string 'auto'). */
  readonly auto?: boolean;
  /** The value's name in help (`--out RUN`). */
  readonly placeholder?: string;
  /** Required options say so in help; the command checks them (some are required only sometimes). */
  readonly required?: boolean;
  /** String options: may be given more than once; the value is the list, in order. */
  readonly multiple?: boolean;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

export interface CommandSpec<O extends OptionTable = OptionTable> {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly example: string;
  readonly options: O;
  /** What positional arguments are (predict's image files); none allowed when absent. */
  readonly positionals?: string;
}

type Camel<S extends string> = S extends `${infer A}-${infer B}` ? `${A}${Capitalize<Camel<B>>}` : S;
type Value<S extends OptionSpec> = S extends { multiple: true }
  ? string[]
  : S['type'] extends 'boolean'
  ? boolean
  : S['type'] extends 'number' | 'integer'
    ? S extends { auto: true } ? number | 'auto' : number
    : S extends { choices: readonly (infer C)[] } ? C : string;
/** The parsed options of a table: camelCase names, typed values; optional where there is no default. */
export type Parsed<O extends OptionTable> = {
  -readonly [K in keyof O & string as O[K] extends { default: unknown } ? Camel<K> : never]: Value<O[K]>;
} & {
  -readonly [K in keyof O & string as O[K] extends { default: unknown } ? never : Camel<K>]?: Value<O[K]>;
};

export function camel(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Options every command takes: compute settings and help. */
export const GLOBAL_OPTIONS = {
  threads: { type: 'integer', min: 1, max: 1024, placeholder: 'N', defaultText: 'all cores, or OMP_NUM_THREADS', help: 'intra-op threads for libtorch' },
  precision: { type: 'string', choices: ['fp32', 'bf16', 'auto'], default: 'auto', help: 'bfloat16 autocast for forward passes where the processor has AMX or AVX512-BF16 (auto), or not' },
  'channels-last': { type: 'string', choices: ['on', 'off', 'auto'], default: 'auto', help: 'NHWC weights and batches where oneDNN runs the convolutions (auto), or not' },
  'dry-run': { type: 'boolean', default: false, help: 'check the command line and the inputs it names (image folders, label files, run folders, weights files) without decoding images, print the plan and stop: nothing is trained or written' },
  help: { type: 'boolean', default: false, help: "this command's options" },
} as const satisfies OptionTable;

/** The threads a command uses without --threads: OMP_NUM_THREADS where it is a whole number of threads; otherwise all cores. */
export function threadsFromEnvironment(cores: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.OMP_NUM_THREADS;
  if (raw === undefined || raw.trim() === '') return cores;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new UsageError(`OMP_NUM_THREADS must be a whole number of threads from 1 to 1024, got '${raw}' (or pass --threads N)`);
  return n;
}

function describeRange(o: OptionSpec): string {
  const kind = o.type === 'integer' ? 'an integer' : 'a number';
  const lo = o.min !== undefined ? ` >= ${o.min}` : '';
  const hi = o.max !== undefined ? `${lo ? ' and' : ''} <= ${o.max}` : '';
  return `${kind}${lo}${hi}${o.auto ? " or 'auto'" : ''}`;
}

function listChoices(choices: readonly string[]): string {
  return choices.length > 1 ? `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}` : `${choices[0]}`;
}

/** Converts and checks one option's text; a UsageError names the option and the value. */
export function convertValue(name: string, o: OptionSpec, raw: string): string | number | boolean {
  if (o.type === 'number' || o.type === 'integer') {
    if (o.auto && raw === 'auto') return 'auto';
    const v = raw.trim() === '' ? NaN : Number(raw);
    const bad = !Number.isFinite(v) || (o.type === 'integer' && !Number.isInteger(v)) || (o.min !== undefined && v < o.min) || (o.max !== undefined && v > o.max);
    if (bad) throw new UsageError(`--${name} must be ${describeRange(o)}${o.rangeWhy ? ` (${o.rangeWhy})` : ''}, got '${raw}'`);
    return v;
  }
  if (o.choices && !o.choices.includes(raw)) throw new UsageError(`--${name} must be ${listChoices(o.choices)}, got '${raw}'`);
  return raw;
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** The known name nearest to `name`, when it is near enough to be a typo. */
export function nearest(name: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.startsWith(name) || name.startsWith(k) ? Math.min(distance(name, k), 2) : distance(name, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best !== null && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : null;
}

export interface ParseResult<O extends OptionTable> {
  values: Parsed<O>;
  positionals: string[];
  /** Option names (kebab-case) given on the command line. */
  given: Set<string>;
  /** The global options' values (the same as in values), typed. */
  globals: Parsed<typeof GLOBAL_OPTIONS>;
}

/** Default values of a table (options with a default only), camelCased. */
export function defaultsOf<O extends OptionTable>(table: O): Parsed<O> {
  const out: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(table)) if (o.default !== undefined) out[camel(name)] = o.default;
  return out as Parsed<O>;
}

/**
 * Parses argv against a command's table (plus the global options). Unknown options name the
 * nearest known one; booleans are `--name` / `--no-name`; every value is checked.
 */
export function parseCommand<O extends OptionTable>(spec: CommandSpec<O>, argv: string[]): ParseResult<O & typeof GLOBAL_OPTIONS> {
  const table: OptionTable = { ...spec.options, ...GLOBAL_OPTIONS };
  const config: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  const known: string[] = [];
  for (const [name, o] of Object.entries(table)) {
    config[name] = { type: o.type === 'boolean' ? 'boolean' : 'string' };
    known.push(name);
    if (o.type === 'boolean' && name !== 'help') {
      config[`no-${name}`] = { type: 'boolean' };
      known.push(`no-${name}`);
    }
  }
  config.help = { type: 'boolean', short: 'h' };
  const { tokens } = parseArgs({ args: argv, options: config, strict: false, allowPositionals: true, tokens: true });
  const values: Record<string, unknown> = defaultsOf(table);
  const given = new Set<string>();
  const positionals: string[] = [];
  let lastBoolean: { name: string; index: number } | null = null;
  for (const tok of tokens) {
    if (tok.kind === 'positional') {
      // `--knn yes`: a value after a boolean option is a mistake, not an image file.
      if (lastBoolean && lastBoolean.index === tok.index - 1 && !spec.positionals) {
        throw new UsageError(`--${lastBoolean.name} takes no value, got '${tok.value}': write --${lastBoolean.name} or --no-${lastBoolean.name}`);
      }
      positionals.push(tok.value);
      continue;
    }
    if (tok.kind !== 'option') continue;
    const raw = tok.name;
    const negated = raw.startsWith('no-') && Object.hasOwn(table, raw.slice(3)) && table[raw.slice(3)]!.type === 'boolean';
    const name = negated ? raw.slice(3) : raw;
    const o = Object.hasOwn(table, name) ? table[name]! : undefined;
    if (!o) {
      const prefixed = known.filter((k) => k.endsWith(`-${raw}`) && !k.startsWith('no-'));
      const near = nearest(raw, known);
      const hint = prefixed.length > 0 ? `; stage options take the stage's prefix: ${prefixed.slice(0, 4).map((k) => `--${k}`).join(', ')}` : near ? `; did you mean --${near}?` : '';
      throw new UsageError(`unknown option ${tok.rawName} for '${spec.name}'${hint} (simclr ${spec.name} --help lists them)`);
    }
    if (o.type === 'boolean') {
      if (tok.inlineValue) throw new UsageError(`--${name} takes no value, got '${tok.value}': write --${name} or --no-${name}`);
      values[camel(name)] = !negated;
      lastBoolean = { name, index: tok.index };
    } else {
      const v = tok.value;
      if (v === undefined || (!tok.inlineValue && v.startsWith('--'))) throw new UsageError(`--${name} needs a value${o.placeholder ? ` (${o.placeholder})` : ''}`);
      const value = convertValue(name, o, v);
      values[camel(name)] = o.multiple ? [...((given.has(name) ? values[camel(name)] : []) as unknown[]), value] : value;
    }
    given.add(name);
  }
  if (positionals.length > 0 && !spec.positionals && !values.help) {
    throw new UsageError(`'${spec.name}' takes no positional arguments, got '${positionals[0]}' (options are written --name value)`);
  }
  return { values: values as Parsed<O & typeof GLOBAL_OPTIONS>, positionals, given, globals: values as Parsed<typeof GLOBAL_OPTIONS> };
}

function optionLabel(name: string, o: OptionSpec): string {
  if (o.type === 'boolean') return name === 'help' ? '--help' : `--${name}, --no-${name}`;
  const value = o.placeholder ?? (o.choices ? o.choices.join('|') : o.type === 'integer' || o.type === 'number' ? (o.auto ? 'N|auto' : 'N') : 'VALUE');
  return `--${name} ${value}${o.multiple ? ' ...' : ''}`;
}

function optionDefault(o: OptionSpec): string {
  if (o.required) return 'required';
  if (o.defaultText) return `default: ${o.defaultText}`;
  if (o.type === 'boolean') return o.default ? 'default: on' : 'default: off';
  if (o.default === undefined || o.default === '') return '';
  return `default: ${o.default}`;
}

/** The option list as help and the README show it: one line per option. */
export function renderOptions(table: OptionTable): string {
  const rows = Object.entries(table).map(([name, o]) => {
    const d = name === 'help' ? '' : optionDefault(o);
    return [optionLabel(name, o), `${o.help}${d ? ` (${d})` : ''}`] as const;
  });
  const width = Math.min(36, rows.reduce((w, [label]) => Math.max(w, label.length), 0) + 2);
  return rows.map(([label, text]) => (label.length + 2 > width ? `  ${label}\n  ${' '.repeat(width)}${text}` : `  ${label.padEnd(width)}${text}`)).join('\n');
}

export function renderHelp(spec: CommandSpec): string {
  return [
    `simclr ${spec.name}: ${spec.summary}`,
    '',
    `Usage: ${spec.usage}`,
    `Example: ${spec.example}`,
    '',
    'Options:',
    renderOptions(spec.options),
    '',
    'Global options:',
    renderOptions(GLOBAL_OPTIONS),
    '',
  ].join('\n');
}
