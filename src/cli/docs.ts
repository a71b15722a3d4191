// The README's option lists, made from the same tables as the parser and --help.
import { GLOBAL_OPTIONS, renderOptions } from './options';
import { COMMANDS } from './specs';

/** Each command's block as the README holds it, by marker name ('global' for the global options). */
export function optionBlocks(): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const spec of Object.values(COMMANDS)) blocks.set(spec.name, renderOptions(spec.options));
  blocks.set('global', renderOptions(GLOBAL_OPTIONS));
  return blocks;
}

const fence = '```';

/** The README with every marked block replaced by the current option list. */
export function readmeWithOptions(readme: string): string {
  let out = readme;
  for (const [name, text] of optionBlocks()) {
    const pattern = new RegExp(`(<!-- options:${name} -->\\n)[\\s\\S]*?(<!-- /options:${name} -->)`);
    out = out.replace(pattern, (_, open: string, close: string) => `${open}${fence}text\n${text}\n${fence}\n${close}`);
  }
  return out;
}
