// Named recipes: settings a pipeline takes as a whole. `paper` is the paper's (the stages'
// defaults); `laptop` is the demo's, chosen on validation for a 2-core machine and minutes
// of training (bench/demo-settings.md). A flag given on the command line wins over the recipe;
// the run records where each setting came from.
import type { PipelinePlan } from './stages/pipeline';

export const RECIPE_NAMES = ['paper', 'laptop'] as const;
export type RecipeName = (typeof RECIPE_NAMES)[number];

type Recipe = Pick<PipelinePlan, 'encoder' | 'pretrain' | 'supervised' | 'finetune' | 'distill'>;

const crop = { cropMin: 0.5 };

export const RECIPES: Record<RecipeName, Recipe> = {
  paper: {},
  laptop: {
    // ResNet-18 at width 0.25, crops of 20-100% (the paper's 8-100% lost 0.9 points of validation top-1 in the demo).
    encoder: { depth: 18, width: 0.25 },
    pretrain: { epochs: 7, batch: 256, cropMin: 0.2 },
    finetune: { epochs: 60, lr: 0.05, ...crop },
    supervised: { epochs: 120, lr: 0.1, weightDecay: 5e-4, ...crop },
    distill: { epochs: 4, lr: 0.1, weightDecay: 5e-4, ...crop },
  },
};

const PARTS = ['encoder', 'pretrain', 'supervised', 'finetune', 'distill'] as const;

/**
 * The plan with the recipe's settings under the given ones, and where each setting came
 * from ('flag', 'recipe laptop'), by its pipeline flag name (--pretrain-epochs).
 */
export function withRecipe(plan: PipelinePlan, name: RecipeName): { plan: PipelinePlan; sources: Record<string, string> } {
  const recipe = RECIPES[name];
  const sources: Record<string, string> = {};
  const out: PipelinePlan = { ...plan };
  for (const part of PARTS) {
    const given = (plan[part] ?? {}) as Record<string, unknown>;
    const preset = (recipe[part] ?? {}) as Record<string, unknown>;
    const flag = (k: string) => (part === 'encoder' ? `--${k}` : `--${part}-${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    for (const k of Object.keys(preset)) sources[flag(k)] = `recipe ${name}`;
    for (const [k, v] of Object.entries(given)) if (v !== undefined) sources[flag(k)] = 'flag';
    (out as unknown as Record<string, unknown>)[part] = { ...preset, ...given };
  }
  return { plan: out, sources };
}
