// The typed plans of a run: what to train, on what, with which settings. A plan holds only
// what its author chose; everything else comes from the stage's defaults (../defaults.ts).

import type { BatchNormScope } from '../../distributed';

export type ClassifierKind = 'finetune' | 'supervised' | 'distill';

/** How a run computes; resuming under other settings than the recorded ones is refused unless forced. */
export interface ComputePlan {
  precision?: 'fp32' | 'bf16' | 'auto';
  channelsLast?: 'on' | 'off' | 'auto';
  /** intra-op threads (default: the process's) */
  threads?: number;
  /** 'cpu' (default), 'cuda' (this worker's LOCAL_RANK's GPU) or 'cuda:N' */
  device?: string;
  /** Resume even where the settings differ from the recorded ones. */
  force?: boolean;
}

export interface DataPlan {
  /** An image folder, fashion-mnist[:DIR], mnist:DIR, cifar10-bin:DIR or cifar100-bin:DIR (or unlabeled/labeled instead). */
  spec: string;
  /** Folders of unlabeled images (flat or nested), instead of spec. */
  unlabeled?: string[];
  /** A labeled folder (class subfolders) or CSV (path,label), with or instead of unlabeled. */
  labeled?: string;
  /** The test set (default: the source's test split). */
  test?: string;
  imageSize?: number | 'auto';
  channels?: 1 | 3 | 'auto';
}

export interface EncoderPlan {
  depth: number;
  width: number;
  sk: boolean;
  /** The last batch norm of each residual block starts at zero scale (the official init_zero; off by default: it scored lower on validation). */
  zeroInitResidual: boolean;
}

export interface PretrainSettings {
  epochs: number;
  batch: number;
  /** LARS base rate, times batch/256 (linear) or sqrt(batch) (sqrt). Default: 1.0 for small images; else the paper's 0.3 (linear) or 0.075 (sqrt). */
  lr?: number;
  lrScaling: 'linear' | 'sqrt';
  /** Default: 0.5 for small images, else 0.1. */
  temperature?: number;
  /** Default: a tenth of the epochs (0 under 10). */
  warmupEpochs?: number;
  cropMin: number;
  maxImages: number;
  interpolation: 'bicubic' | 'bilinear';
  pixelCrops: boolean;
  seed: number;
  /** kNN monitor after each epoch (not a training setting: may change on resume). */
  knn: boolean;
  /** With workers: batch norm statistics over the global batch (the paper's) or each worker's share. */
  batchNorm: BatchNormScope;
}

export interface PretrainPlan {
  out: string;
  /** Continue the run in `out`; settings given here must match the recorded ones. */
  resume?: boolean;
  /** Required for a new run (a resume may repeat it). */
  data?: Partial<DataPlan>;
  encoder?: Partial<EncoderPlan>;
  settings?: Partial<PretrainSettings>;
  skipBadImages?: boolean;
  compute?: ComputePlan;
  /** Published weights to continue from (a fresh head where the file has none). */
  init?: string;
}

export interface ClassifierSettings {
  /** 1%, 10%, a fraction such as 0.1, or N/class. */
  labels: string;
  /** The user's labeled images: a folder of class subfolders or a CSV (path,label); every one is used. */
  labeled?: string;
  /** The classes (a,b,c or a folder of class subfolders), when some may have no labeled image yet. */
  classes?: string;
  /** Reuse a list of labeled image ids instead of drawing one. */
  labelsFile?: string;
  /**
   * The validation split held out of the training images ('10%', '0.1', '500' images, or
   * '0' for none; at most 5,000): never trained on as labels, reported after each epoch.
   */
  val: string;
  /** Reuse a list of validation image ids. */
  valFile?: string;
  epochs: number;
  batch: number;
  lr: number;
  weightDecay: number;
  cropMin: number;
  dropLast: boolean;
  interpolation: 'bicubic' | 'bilinear';
  pixelCrops: boolean;
  seed: number;
  /** finetune: fine-tune from this layer of the projection head (0: the encoder alone; SimCLRv2: 1). */
  fromHeadLayer?: number;
  /** distill: softmax temperature of teacher and student (default 1). */
  temperature?: number;
  /** supervised, distill: the fresh network's init_zero (default: as the run's encoder). */
  zeroInitResidual?: boolean;
  /** distill: the student's width and depth (default the teacher's), and a subset of images (0: all). */
  studentWidth?: number;
  studentDepth?: number;
  maxImages?: number;
  /** With workers: batch norm statistics over the global batch (the paper's) or each worker's share. */
  batchNorm: BatchNormScope;
}

export interface ClassifierPlan {
  kind: ClassifierKind;
  /** The run folder (for distill: the one holding the fine-tuned teacher). */
  run: string;
  resume?: boolean;
  settings?: Partial<ClassifierSettings>;
  /** Default: as the run was made. */
  skipBadImages?: boolean;
  compute?: ComputePlan;
}

export type Outcome = 'finished' | 'stopped';

