// Recipe variants judged on validation, over seeds: each variant is a set of extra flags
// for the stages (pretrain, finetune, and optionally supervised and distill) on
// Fashion-MNIST at 1% of the labels, with the demo's encoder (ResNet-18 x0.25). A run
// continues where it stopped (finished stages are kept). Only validation top-1 is printed:
// the settings are chosen on it, and the test set is read once, for the chosen recipe.
//
//   npm run bench:variants -- --name no-zero-init --pretrain=--no-zero-init-residual --supervised=
//   npm run bench:variants -- --name t02 --pretrain="--temperature 0.2" --seeds 0-2
//   npm run bench:variants -- --compare base,zero-init,t02     (paired differences to the first)
//
// --cli PATH runs another build of simclr (e.g. an older commit's) under the same recipe;
// --pretrained-from NAME runs only the classifier stages, on NAME's pretrained encoders.
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, mean, pretrainDone, results, runCli, sd, se, seedList } from './stage-runs';

const words = (s: string | undefined): string[] => (s ? s.split(/\s+/).filter(Boolean) : []);

/** The recipe every variant starts from: the demo's, with fewer pretraining epochs. */
const BASE = {
  pretrain: ['--data', 'fashion-mnist', '--width', '0.25', '--batch', '256'],
  finetune: ['--labels', '1%', '--epochs', '60', '--lr', '0.05', '--crop-min', '0.5'],
  supervised: ['--labels', '1%', '--epochs', '120', '--lr', '0.1', '--weight-decay', '5e-4', '--crop-min', '0.5'],
  distill: ['--labels', '1%', '--epochs', '4', '--lr', '0.1', '--weight-decay', '5e-4', '--crop-min', '0.5'],
};

function runVariant(o: { name: string; cli: string; out: string; seeds: number[]; epochs: string; threads: string; stages: Record<string, string[] | null>; pretrainedFrom?: string }): number {
  for (const seed of o.seeds) {
    const dir = join(o.out, o.name, `seed-${seed}`);
    if (o.pretrainedFrom && !existsSync(join(dir, 'pretrain.safetensors'))) {
      // The classifier stages of this variant on another variant's pretrained encoders.
      const source = join(o.out, o.pretrainedFrom, `seed-${seed}`);
      if (!pretrainDone(source)) {
        console.error(`variants: ${source} has no finished pretraining (run --name ${o.pretrainedFrom} first)`);
        return 2;
      }
      mkdirSync(dir, { recursive: true });
      for (const f of ['config.json', 'pretrain.json', 'pretrain.safetensors']) copyFileSync(join(source, f), join(dir, f));
    }
    const common = ['--seed', String(seed), '--threads', o.threads];
    const steps: [string, string[]][] = [];
    if (!pretrainDone(dir)) {
      steps.push(['pretrain', ['pretrain', ...BASE.pretrain, '--epochs', o.epochs, '--out', dir, ...common, ...(existsSync(join(dir, 'config.json')) ? ['--resume'] : []), ...o.stages.pretrain!]]);
    }
    for (const stage of ['finetune', 'supervised', 'distill'] as const) {
      const extra = o.stages[stage];
      if (extra === null || extra === undefined) continue;
      const flag = stage === 'distill' ? '--teacher' : '--from';
      steps.push([stage, [stage, flag, dir, ...BASE[stage], ...common, ...extra]]);
    }
    for (const [stage, args] of steps) {
      if (stage !== 'pretrain' && results(dir).some((r) => r.stage === `${stage}-1pct`)) continue;
      if (!runCli(o.cli, args, `variants: ${o.name} seed ${seed} ${stage}`)) return 1;
    }
    const line = results(dir).map((r) => `${r.stage} val ${r.val_top1?.toFixed(2)} (${r.seconds}s)`);
    console.log(`${o.name} seed ${seed}: ${line.join(', ')}`);
  }
  return 0;
}

function compare(out: string, names: string[]): number {
  const table = new Map<string, Map<string, Map<string, number>>>(); // variant -> stage -> seed -> val
  for (const name of names) {
    const byStage = new Map<string, Map<string, number>>();
    const root = join(out, name);
    if (!existsSync(root)) {
      console.error(`variants: no runs for '${name}' under ${out}`);
      return 2;
    }
    for (const seedDir of readdirSync(root)) {
      for (const r of results(join(root, seedDir))) {
        if (r.val_top1 === undefined) continue;
        const kind = r.stage.replace(/-.*/, '');
        if (!byStage.has(kind)) byStage.set(kind, new Map());
        byStage.get(kind)!.set(seedDir, r.val_top1);
      }
    }
    table.set(name, byStage);
  }
  const first = names[0]!;
  for (const stage of ['finetune', 'supervised', 'distill']) {
    for (const name of names) {
      const vals = table.get(name)!.get(stage);
      if (!vals || vals.size === 0) continue;
      const v = [...vals.values()];
      let diff = '';
      const ref = table.get(first)!.get(stage);
      if (name !== first && ref) {
        const paired = [...vals.entries()].filter(([s]) => ref.has(s)).map(([s, x]) => x - ref.get(s)!);
        if (paired.length > 1) diff = `  vs ${first}: ${paired.length} seeds, ${mean(paired) >= 0 ? '+' : ''}${mean(paired).toFixed(2)} (se ${se(paired).toFixed(2)})`;
        console.log(`variant_${name}_${stage}_val_margin=${mean(paired).toFixed(2)}`);
      }
      console.log(`${stage.padEnd(10)} ${name.padEnd(18)} val ${mean(v).toFixed(2)} ± ${sd(v).toFixed(2)} over ${v.length} seeds${diff}`);
    }
  }
  return 0;
}

function main(): number {
  const { values } = parseArgs({
    options: {
      name: { type: 'string' },
      compare: { type: 'string' },
      cli: { type: 'string', default: CLI },
      out: { type: 'string', default: join('runs', 'variants') },
      seeds: { type: 'string', default: '0-2' },
      'pretrain-epochs': { type: 'string', default: '2' },
      threads: { type: 'string', default: '2' },
      'pretrained-from': { type: 'string' },
      pretrain: { type: 'string', default: '' },
      finetune: { type: 'string', default: '' },
      supervised: { type: 'string' },
      distill: { type: 'string' },
    },
  });
  if (values.compare) return compare(values.out!, values.compare.split(','));
  if (!values.name || !/^[\w.-]+$/.test(values.name)) {
    console.error('variants: --name NAME (letters, digits, . _ -) or --compare A,B,... is required');
    return 2;
  }
  const seeds = seedList(values.seeds!);
  if (seeds.length < 2 || seeds.some((s) => !Number.isInteger(s) || s < 0)) {
    console.error(`variants: --seeds must name at least two seeds (0-2 or 0,3,5), got '${values.seeds}'`);
    return 2;
  }
  const stages = {
    pretrain: words(values.pretrain),
    finetune: words(values.finetune),
    supervised: values.supervised === undefined ? null : words(values.supervised),
    distill: values.distill === undefined ? null : words(values.distill),
  };
  return runVariant({ name: values.name, cli: values.cli!, out: values.out!, seeds, epochs: values['pretrain-epochs']!, threads: values.threads!, stages, pretrainedFrom: values['pretrained-from'] });
}

process.exitCode = main();
