// The demo as a constant plan: the pipeline on Fashion-MNIST with 1% of the labels, at a
// budget that fits a laptop (about 20 minutes on 2 cores; quick: about 3). The settings
// and how they were chosen: README "Measured" and bench/demo-settings.md.
import type { PipelinePlan } from './plans';

export function demoPlan({ quick = false, out, labels = '1%', seed = 0 }: { quick?: boolean; out: string; labels?: string; seed?: number }): PipelinePlan {
  const crop = { cropMin: 0.5 };
  return {
    out,
    data: { spec: 'fashion-mnist' },
    // ResNet-18 at width 0.25 with the CIFAR stem (28px images) and 1 input channel.
    encoder: { depth: 18, width: 0.25 },
    labels: [labels],
    seed,
    // Crops of 20-100% of the image (the paper's 8-100% lost 0.9 points of validation top-1
    // here), and 7 epochs: the minutes the 20-minute budget leaves (bench/demo-settings.md).
    pretrain: { epochs: quick ? 1 : 7, batch: 256, cropMin: 0.2, ...(quick ? { maxImages: 10000 } : {}) },
    finetune: { epochs: quick ? 20 : 60, lr: 0.05, ...crop },
    supervised: { epochs: quick ? 40 : 120, lr: 0.1, weightDecay: 5e-4, ...crop },
    distill: { epochs: quick ? 1 : 4, lr: 0.1, weightDecay: 5e-4, ...crop, ...(quick ? { maxImages: 10000 } : {}) },
  };
}
