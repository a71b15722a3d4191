// docs/cli.md, made from the same tables as the parser and --help (test/cli-options.test.ts
// fails when the file is out of date; `npm run docs:cli` rewrites it).
import { GLOBAL_OPTIONS, renderOptions, type CommandSpec, type OptionTable } from './options';
import { COMMANDS, PIPELINE_STAGES, deviceOptions, pipelineOwnOptions, workerOptions } from './specs';

const fence = '```';

/** Shared option groups, listed once in the reference instead of under every command. */
const SHARED_GROUPS: readonly { title: string; anchor: string; table: OptionTable }[] = [
  { title: 'Worker options', anchor: 'worker-options', table: workerOptions },
  { title: 'Device options', anchor: 'device-options', table: deviceOptions },
];

function block(table: OptionTable): string {
  return `${fence}text\n${renderOptions(table)}\n${fence}`;
}

/** The command's own options: without the shared groups it takes whole, and the pipeline without its stage-prefixed copies. */
function ownOptions(spec: CommandSpec): { table: OptionTable; shared: string[] } {
  const names = new Set(Object.keys(spec.options));
  const shared = SHARED_GROUPS.filter((g) => Object.keys(g.table).every((k) => names.has(k)));
  const dropped = new Set(shared.flatMap((g) => Object.keys(g.table)));
  const keep = spec.name === 'pipeline' ? new Set(Object.keys(pipelineOwnOptions)) : names;
  const table = Object.fromEntries(Object.entries(spec.options).filter(([k]) => keep.has(k) && !dropped.has(k)));
  return { table, shared: shared.map((g) => `[${g.title.toLowerCase()}](#${g.anchor})`) };
}

function commandSection(spec: CommandSpec): string {
  const { table, shared } = ownOptions(spec);
  const lines = [`## ${spec.name}`, '', `${spec.summary[0]!.toUpperCase()}${spec.summary.slice(1)}.`, '', `Usage: \`${spec.usage}\``, '', `    npx ${spec.example}`, ''];
  if (spec.positionals) lines.push(`Arguments: ${spec.positionals}.`, '');
  lines.push(block(table));
  if (spec.name === 'pipeline') {
    const stages = Object.keys(PIPELINE_STAGES).map((s) => `[${s}](#${s})`).join(', ');
    lines.push('', `Every option of ${stages} that the pipeline does not set itself is taken with its stage's name in front: \`--pretrain-epochs\`, \`--finetune-lr\`, \`--distill-temperature\`, \`--supervised-batch\`. \`simclr pipeline --help\` lists them all.`);
  }
  if (shared.length) lines.push('', `Also the ${shared.join(' and the ')}, and the [global options](#global-options).`);
  else lines.push('', 'Also the [global options](#global-options).');
  return lines.join('\n');
}

/** The whole of docs/cli.md. */
export function cliReference(): string {
  const commands = Object.values(COMMANDS) as CommandSpec[];
  const parts = [
    '# The `simclr` command',
    '',
    '<!-- Generated from src/cli/specs.ts by `npm run docs:cli`; do not edit by hand. -->',
    '',
    '`simclr COMMAND --help` prints the same lists. Every command takes `--dry-run` (one of the [global options](#global-options)): it checks the command line and the inputs it names, prints the plan, and trains, starts or writes nothing.',
    '',
    commands.map((c) => `- [${c.name}](#${c.name}): ${c.summary}`).join('\n'),
    '',
    ...commands.map((c) => `${commandSection(c)}\n`),
    '## Global options',
    '',
    'Every command takes these.',
    '',
    block(GLOBAL_OPTIONS),
    '',
    ...SHARED_GROUPS.flatMap((g) => [`## ${g.title}`, '', `The training commands take these${g.anchor === 'worker-options' ? ', and `eval` the worker options' : ''}.`, '', block(g.table), '']),
  ];
  return parts.join('\n');
}
