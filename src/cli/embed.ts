// `simclr embed`: embeddings of image files or folders, to safetensors or CSV.
import { resolve } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { UsageError, type Parsed } from './options';
import type { COMMANDS } from './specs';
import { embedImages } from '../run';
import { folderImages } from './train-commands';
import { skippedLine } from './images';
import * as t from '../torch';
import { csvPath } from '../data';
import { writeAtomic } from '../util/fs';

export function requireEmbedOut(out: string | undefined): string {
  if (!out) throw new UsageError('--out FILE.safetensors or FILE.csv is required: where the embeddings go');
  return out;
}

export async function embedCommand({ values: o, positionals }: { values: Parsed<typeof COMMANDS.embed.options>; positionals: string[] }): Promise<number> {
  const out = requireEmbedOut(o.out);
  const r = await embedImages({ run: o.model ?? '', files: [...positionals, ...folderImages(o.unlabeled)], stage: o.stage, skipBadImages: o.skipBadImages });
  if (r.skipped.length) console.error(skippedLine(r.skipped));
  if (/\.csv$/i.test(out)) {
    const rows = r.files.map((f, i) => [csvPath(out, resolve(f)), ...Array.from(r.features.subarray(i * r.dim, (i + 1) * r.dim), (v) => v.toPrecision(6))]);
    writeAtomic(out, stringify([['path', ...Array.from({ length: r.dim }, (_, j) => `e${j}`)], ...rows]));
  } else {
    const embeddings = t.tensor(r.features, [r.files.length, r.dim]);
    t.saveSafetensors(out, { embeddings }, { paths: JSON.stringify(r.files.map((f) => resolve(f))), model: o.model ?? '', stage: o.stage });
    embeddings.dispose();
  }
  console.log(`wrote ${out}: ${r.files.length} embeddings of ${r.dim} dimensions (${o.stage === 'pretrain' ? 'the pretrained encoder' : o.stage})`);
  return 0;
}
