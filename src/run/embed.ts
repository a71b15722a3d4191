// simclr embed: the pretrained encoder's features of image files (a folder streamed through
// the one evaluation forward), with each image's path: for search, clustering or plots.
import { PlanError } from './errors';
import { checkPretrained, loadClassifier, openRun, pretrainedModel, stageArch } from './folder';
import { streamPass } from './stream-pass';

export interface EmbedPlan {
  run: string;
  files: string[];
  /** pretrain (default: the pretrained encoder) or a classifier stage (its tuned encoder) */
  stage?: string;
  skipBadImages?: boolean;
}

export interface Embeddings {
  /** the files embedded, in order (those that decoded) */
  files: string[];
  /** [files.length, dim], row-major */
  features: Float32Array;
  dim: number;
  skipped: string[];
}

/** The plan's images, run and stage, checked before any model is loaded (and by --dry-run). */
export function checkEmbedPlan(plan: EmbedPlan): ReturnType<typeof openRun> {
  if (plan.files.length === 0) throw new PlanError('name image files or a folder to embed: simclr embed --model RUN --unlabeled DIR --out FILE');
  const opened = openRun(plan.run);
  if (!plan.stage || plan.stage === 'pretrain') checkPretrained(opened.run);
  else stageArch(opened.run, plan.stage);
  return opened;
}

export async function embedImages(plan: EmbedPlan): Promise<Embeddings> {
  const { run, config } = checkEmbedPlan(plan);
  const model = !plan.stage || plan.stage === 'pretrain' ? pretrainedModel(run, config) : loadClassifier(run, plan.stage).model;
  const rows: (Float32Array | undefined)[] = new Array(plan.files.length);
  let dim = 0;
  try {
    const skipped = await streamPass({ files: plan.files, size: config.imageSize, channels: config.channels, norm: config.norm, skipBadImages: plan.skipBadImages }, model.encoder, (features, positions) => {
      dim = features.shape[1]!;
      const values = features.data() as Float32Array;
      positions.forEach((position, i) => (rows[position] = values.slice(i * dim, (i + 1) * dim)));
    });
    const kept = plan.files.map((_, i) => i).filter((i) => rows[i]);
    const features = new Float32Array(kept.length * dim);
    kept.forEach((i, k) => features.set(rows[i]!, k * dim));
    return { files: kept.map((i) => plan.files[i]!), features, dim, skipped };
  } finally {
    model.dispose();
  }
}
