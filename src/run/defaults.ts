// The settings of each stage when nothing else is said: the paper's, scaled to the data
// where the paper does (see README). The command line's defaults come from here too.
import type { PretrainSettings, ClassifierSettings, ClassifierKind } from './plans';

export const PRETRAIN_DEFAULTS: PretrainSettings = {
  epochs: 100,
  batch: 256,
  lr: 1.0,
  cropMin: 0.08,
  maxImages: 0,
  interpolation: 'bicubic',
  pixelCrops: false,
  seed: 0,
  knn: false,
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
});

// The baseline trains best on whole-pixel crops (torchvision's), the SimCLR stages on
// fractional ones: each stage gets its better setting, as each has its own lr and decay.
export const CLASSIFIER_DEFAULTS: Record<ClassifierKind, ClassifierSettings> = {
  finetune: classifier(30, 0.05, 0, false),
  supervised: classifier(60, 0.1, 5e-4, true),
  distill: classifier(10, 0.1, 5e-4, false),
};
