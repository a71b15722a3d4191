// The demo as a constant plan: the pipeline on Fashion-MNIST with 1% of the labels, at a
// budget that fits a laptop (about 20 minutes on 2 cores; quick: about 3). The settings
// and how they were chosen: README "Measured" and bench/demo-settings.md.
import type { PipelinePlan } from './plans';
import { RECIPES } from './recipes';

export function demoPlan({ quick = false, out, labels = '1%', seed = 0 }: { quick?: boolean; out: string; labels?: string; seed?: number }): PipelinePlan {
  // The laptop recipe (src/run/recipes.ts) is the demo's: ResNet-18 at width 0.25 with the
  // CIFAR stem (28px images) and 1 input channel; --quick cuts its epochs and images.
  const r = RECIPES.laptop;
  return {
    out,
    data: { spec: 'fashion-mnist' },
    encoder: r.encoder,
    labels: [labels],
    seed,
    pretrain: { ...r.pretrain, ...(quick ? { epochs: 1, maxImages: 10000 } : {}) },
    finetune: { ...r.finetune, ...(quick ? { epochs: 20 } : {}) },
    supervised: { ...r.supervised, ...(quick ? { epochs: 40 } : {}) },
    distill: { ...r.distill, ...(quick ? { epochs: 1, maxImages: 10000 } : {}) },
  };
}
