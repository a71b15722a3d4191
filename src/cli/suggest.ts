// `simclr suggest-labels`: flags -> a suggestion plan -> the CSV and contact sheet, and what to do next.
import type { Parsed } from './options';
import type { COMMANDS } from './specs';
import { suggestLabels, type SuggestPlan } from '../run';

type SuggestValues = Parsed<typeof COMMANDS['suggest-labels']['options']>;

/** The suggestion plan a command line describes. */
export function suggestPlanOf(o: SuggestValues, given: ReadonlySet<string>): SuggestPlan {
  return {
    run: o.model ?? '',
    count: o.count ?? 0,
    strategy: o.strategy,
    out: o.out,
    seed: o.seed,
    ...(given.has('unlabeled') ? { unlabeled: o.unlabeled } : {}),
    ...(o.labeled ? { labeled: o.labeled } : {}),
    ...(o.stage ? { stage: o.stage } : {}),
    ...(o.sheet ? { sheet: o.sheet } : {}),
    skipBadImages: o.skipBadImages,
  };
}

export async function suggestCommand({ values: o, given }: { values: SuggestValues; given: ReadonlySet<string> }): Promise<number> {
  const r = await suggestLabels(suggestPlanOf(o, given));
  console.log(`${r.choices.length} of ${r.candidates} unlabeled images chosen (${o.strategy}${r.labeled ? `; ${r.labeled} labeled already count as covered` : ''}): embedding ${r.seconds.embed.toFixed(1)} s, choosing ${r.seconds.select.toFixed(1)} s`);
  console.log(`wrote ${r.file}${r.sheet ? ` and ${r.sheet} (the images in the CSV's order)` : ''}`);
  console.log(`next: fill in the label column (simclr label --suggestions ${r.file} --classes a,b,c serves a page for it), then simclr finetune --from ${o.model} --labeled ${r.file}`);
  return 0;
}
