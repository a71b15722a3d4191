// The chart libraries inlined into the report: Vega, Vega-Lite and vega-embed, from their
// npm packages' browser builds, so that the page draws its charts with no network.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface InlineLibrary {
  name: string;
  version: string;
  license: string;
  code: string;
}

/** package -> its minified browser build, beside the module its package exports. */
const BUILDS = { vega: 'vega.min.js', 'vega-lite': 'vega-lite.min.js', 'vega-embed': 'vega-embed.min.js' } as const;

let cached: InlineLibrary[] | null = null;

/** Safe inside <script>: no '</script' or '<!--' can end or bend the element. */
export function scriptSafe(code: string): string {
  return code.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

export function chartLibraries(): InlineLibrary[] {
  if (cached) return cached;
  cached = Object.entries(BUILDS).map(([name, file]) => {
    let dir: string;
    try {
      dir = dirname(require.resolve(name));
    } catch {
      throw new Error(`the report draws its charts with ${name}, which is not installed: run npm install`);
    }
    const pkg = JSON.parse(readFileSync(join(dir, '..', 'package.json'), 'utf8')) as { version: string; license: string };
    return { name, version: pkg.version, license: pkg.license, code: scriptSafe(readFileSync(join(dir, file), 'utf8')) };
  });
  return cached;
}
