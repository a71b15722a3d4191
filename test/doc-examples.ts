// The `simclr` command lines a page shows: in code blocks (fenced or indented; a trailing
// backslash joins lines; `&&` and `;` separate commands; a `# comment` ends one), in a
// YAML command list (`command: [npx, simclr, ...]`), and in inline code that starts with
// `npx simclr`, or with `simclr` and an option. Option lists between <!-- options... -->
// and <!-- /options... --> are passed over, as are `npm run` lines and usage lines with
// placeholders (RUN, DIR, <command>, [--port N], a|b, ...): they describe, they do not run.

export interface Example {
  /** where it is written: file:line */
  where: string;
  /** the arguments after `simclr` */
  argv: string[];
  /** variables the line sets before the command (WORLD_SIZE=... npx simclr ...) */
  assigns: Record<string, string>;
  /** run under a launcher: the line sets WORLD_SIZE, its block exports MASTER_ADDR, or it is a container's command list */
  launched: boolean;
}

/** A usage line, not an example: a placeholder in capitals, <...>, [...], ..., or a|b. */
const PLACEHOLDER = /<[^>]*>|\[|\.\.\.|\w\|\w|(?:^|[\s=:,])[A-Z][A-Z0-9_]*[A-Z0-9](?=$|[\s.,:/])/;

/** Shell words: whitespace-separated, '...' and "..." kept whole (quotes dropped); $NAME expanded from vars. */
export function shellWords(text: string, vars: Readonly<Record<string, string>>): string[] {
  const words: string[] = [];
  for (const m of text.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) {
    const word = m[1] ?? m[2] ?? m[3]!;
    words.push(m[1] !== undefined ? word : word.replace(/\$\{?([A-Z_][A-Z0-9_]*)\}?/g, (all, name: string) => vars[name] ?? all));
  }
  return words;
}

/** The commands in one shell line: from `npx simclr`/`simclr` (after variable assignments, or inside a wrapper such as bash -c '...'). */
function commandsInShell(line: string, vars: Readonly<Record<string, string>>): { text: string; assigns: Record<string, string> }[] {
  const out: { text: string; assigns: Record<string, string> }[] = [];
  for (const part of line.replace(/\s+#.*$/, '').split(/&&|;/)) {
    const m = /^(\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)((?:npx\s+)?simclr\s.*)$/.exec(part) ?? /^(.*?)(npx\s+simclr\s.*)$/.exec(part);
    if (!m) continue;
    const assigns: Record<string, string> = {};
    for (const a of m[1]!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(\S*)/g)) assigns[a[1]!] = shellWords(a[2]!, vars)[0] ?? '';
    out.push({ text: m[2]!.replace(/['"]\s*$/, '').trim(), assigns });
  }
  return out;
}

/** A YAML flow list such as [npx, simclr, pretrain, --batch, "4096"] as its items. */
function yamlList(line: string): string[] | null {
  const m = /command:\s*\[(.*)\]\s*$/.exec(line);
  return m ? m[1]!.split(',').map((s) => s.trim().replace(/^["']|["']$/g, '')) : null;
}

function example(where: string, text: string, assigns: Record<string, string>, launched: boolean, vars: Readonly<Record<string, string>>): Example | null {
  if (/^npm\s/.test(text) || PLACEHOLDER.test(text)) return null;
  const words = shellWords(text, vars);
  const at = words.indexOf('simclr');
  if (at < 0 || at + 1 >= words.length) return null;
  return { where, argv: words.slice(at + 1), assigns, launched: launched || 'WORLD_SIZE' in assigns };
}

/** Every example on a page, in order. `vars` expands $NAME in command lines (a launcher's variables). */
export function examplesIn(page: string, file: string, vars: Readonly<Record<string, string>>): Example[] {
  const lines = page.split('\n');
  const out: Example[] = [];
  const add = (e: Example | null) => void (e && out.push(e));
  let fence: string | null = null;
  let blockStart = 0;
  let options = false;
  let previousBlank = true;
  let inIndented = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/<!--\s*options/.test(line)) options = true;
    if (/<!--\s*\/options/.test(line)) options = false;
    const fenceMark = /^\s*(```+|~~~+)/.exec(line)?.[1];
    if (fenceMark && (fence === null || fenceMark.startsWith(fence))) {
      fence = fence === null ? fenceMark : null;
      blockStart = i;
      continue;
    }
    // An indented code block starts after a blank line and runs through blank lines.
    const indented: boolean = fence === null && /^( {4}|\t)/.test(line) && (previousBlank || inIndented);
    inIndented = indented || (inIndented && line.trim() === '');
    previousBlank = line.trim() === '';
    if (options) continue;
    if (fence !== null || indented) {
      let joined = line;
      while (/\\\s*$/.test(joined) && i + 1 < lines.length) joined = joined.replace(/\\\s*$/, ' ') + lines[++i]!;
      const block = fence !== null ? lines.slice(blockStart, i + 1).join('\n') : '';
      const list = yamlList(joined);
      if (list && list.includes('simclr')) add(example(`${file}:${i + 1}`, list.join(' '), {}, true, vars));
      else for (const c of commandsInShell(joined, vars)) add(example(`${file}:${i + 1}`, c.text, c.assigns, /export\s+MASTER_ADDR/.test(block), vars));
      continue;
    }
    for (const span of line.matchAll(/`([^`]+)`/g)) {
      const text = span[1]!.trim();
      if (/^npx\s+simclr\s/.test(text) || (/^simclr\s/.test(text) && /\s--/.test(text))) add(example(`${file}:${i + 1}`, text, {}, false, vars));
    }
  }
  return out;
}
