// The settings of each stage when nothing else is said: the paper's, scaled to the data
// where the paper does (see README). The command line's defaults come from here too.
import { isSmallImage } from '../augment';
import type { PretrainSettings, ClassifierSettings, ClassifierKind } from './plans';

/**
 * LARS's base rate: 1.0 x batch/256 for small images (the official CIFAR-10 recipe), else
 * the paper's ImageNet rates, 0.3 x batch/256 (linear) or 0.075 x sqrt(batch) (sqrt).
 */
export function defaultPretrainLr(size: number, scaling: 'linear' | 'sqrt'): number {
  if (isSmallImage(size)) return 1.0;
  return scaling === 'sqrt' ? 0.075 : 0.3;
}

export const PRETRAIN_DEFAULTS: PretrainSettings = {
  epochs: 100,
  batch: 256,
  lrScaling: 'linear',
  cropMin: 0.08,
  maxImages: 0,
  interpolation: 'bicubic',
  pixelCrops: false,
  seed: 0,
  knn: false,
  batchNorm: 'global',
};

const classifier = (epochs: number, lr: number, weightDecay: number, pixelCrops: boolean): ClassifierSettings => ({
  labels: '10%',
  val: '10%',
  epochs,
  batch: 256,
  lr,
  weightDecay,
  cropMin: 0.08,
  dropLast: false,
  interpolation: 'bicubic',
  pixelCrops,
  seed: 0,
  batchNorm: 'global',
});

// The baseline trains best on whole-pixel crops (torchvision's), the SimCLR stages on
// fractional ones: each stage gets its better setting, as each has its own lr and decay.
export const CLASSIFIER_DEFAULTS: Record<ClassifierKind, ClassifierSettings> = {
  finetune: classifier(30, 0.05, 0, false),
  // Zero-init residual blocks scored lower for the from-scratch baseline on validation
  // (bench/demo-settings.md), so the baseline starts its blocks as torchvision does.
  supervised: { ...classifier(60, 0.1, 5e-4, true), zeroInitResidual: false },
  distill: classifier(10, 0.1, 5e-4, false),
};
