// simclr import: published weights (torchvision, timm, SimCLRv2 conversions, our exports)
// become a run folder's pretrained encoder and head, from which fine-tuning, distillation,
// evaluation, suggest-labels, export and the report work as from our own pretraining. The
// weights decide the input: their architecture, stem and normalisation, and 224 pixels.
import type { Tensor } from '../torch';
import * as t from '../torch';
import { openDataset, openInputs, type OpenedDataset } from '../data';
import { SimCLRModel } from '../models';
import { IMAGENET_NORM, UNIT_NORM, WeightsFileError, loadPretrained, type WeightsLayout } from '../models/pretrained';
import { RunFolder, datasetStats, saveCheckpoint, PRETRAIN_CHECKPOINT } from '../train';
import type { Normalisation } from '../augment';
import { PlanError } from './errors';
import { asPlanError, userInputsOf } from './data';
import { holdsRun, newRunConfig, type RecordedCompute } from './folder';
import type { DataPlan, EncoderPlan } from './stages/types';

export interface ImportPlan {
  file: string;
  out: string;
  data: Partial<DataPlan>;
  /** Given flags only confirm what the file holds. */
  encoder?: Partial<EncoderPlan>;
  seed?: number;
  skipBadImages?: boolean;
}

/** Where the weights were trained at: the size images default to. */
export const PUBLISHED_IMAGE_SIZE = 224;

/** The weights as a file describes them, with errors as command-line errors. */
export async function readPretrained(file: string): Promise<WeightsLayout & { metadata: Record<string, string> }> {
  try {
    return await loadPretrained(file);
  } catch (e) {
    if (e instanceof WeightsFileError) throw new PlanError(e.message);
    throw e;
  }
}

/** --model/--depth/--width/--sk against the file: the first parameter that does not fit, with both shapes. */
export function confirmArchitecture(layout: WeightsLayout, given: Partial<EncoderPlan> | undefined, file: string): void {
  const e = layout.encoder;
  const wanted = { depth: given?.depth ?? e.depth, width: given?.width ?? e.width, skRatio: given?.sk === undefined ? e.skRatio : given.sk ? 0.0625 : 0 };
  if (wanted.depth === e.depth && wanted.width === e.width && wanted.skRatio === e.skRatio) return;
  const model = new SimCLRModel({ encoder: { ...e, ...wanted } as typeof e });
  try {
    for (const [name, v] of model.stateDict()) {
      if (!name.startsWith('encoder.')) continue;
      const have = layout.state.get(name);
      if (!have || have.shape.join() !== v.shape.join()) {
        const flags = `--depth ${wanted.depth} --width ${wanted.width}${wanted.skRatio ? ' --sk' : ''}`;
        throw new PlanError(`${file} does not fit ${flags}: ${name} is ${have ? `[${have.shape.join(', ')}]` : 'missing'} in the file, [${v.shape.join(', ')}] in that model (the file holds ResNet-${e.depth}, width ${e.width}${e.skRatio ? ', SK' : ''})`);
      }
    }
  } finally {
    model.dispose();
  }
}

/** A SimCLR model with the file's weights; a head the file lacks starts fresh (seeded). */
export function pretrainedSimCLR(layout: WeightsLayout, head: { layers: number; outDim: number }, seed: number, file: string): SimCLRModel {
  t.manualSeed(seed);
  const model = new SimCLRModel({ encoder: layout.encoder, head: layout.head ?? head });
  const own = model.stateDict();
  const missing = [...own.keys()].filter((k) => k.startsWith('encoder.') && !k.endsWith('num_batches_tracked') && !layout.state.has(k));
  if (missing.length) {
    model.dispose();
    throw new PlanError(`${file}: the encoder lacks ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''}`);
  }
  const state = new Map<string, Tensor>([...layout.state].filter(([k]) => own.has(k)));
  try {
    model.loadStateDict(state, { strict: false });
  } catch (e) {
    model.dispose();
    throw new PlanError(`${file}: ${(e as Error).message.replace('loadStateDict: ', '')}`);
  }
  return model;
}

/** How the weights take images: their own normalisation, else the data's. */
export function weightsNorm(layout: WeightsLayout & { metadata: Record<string, string> }, data: OpenedDataset): Normalisation {
  if (layout.norm === 'imagenet') return IMAGENET_NORM;
  if (layout.norm === 'unit') return UNIT_NORM;
  return savedNorm(layout.metadata.norm, data.channels) ?? datasetStats(data);
}

/** An export's normalisation, when it is one: per-channel mean and std, finite, std positive. */
function savedNorm(text: string | undefined, channels: number): Normalisation | null {
  if (!text) return null;
  try {
    const n = JSON.parse(text) as Normalisation;
    const ok = (v: unknown, positive: boolean) => Array.isArray(v) && v.length === channels && v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0));
    return ok(n.mean, false) && ok(n.std, true) ? { mean: n.mean, std: n.std } : null;
  } catch {
    return null;
  }
}

/** The size the weights were trained at: an export's own (a whole number of 8 to 4096 pixels), else 224. */
export function weightsImageSize(metadata: Record<string, string>): number {
  const saved = Number(metadata.image_size);
  return Number.isInteger(saved) && saved >= 8 && saved <= 4096 ? saved : PUBLISHED_IMAGE_SIZE;
}

/** The plan's own mistakes, found before the weights are read (and by --dry-run). */
export function checkImportPlan(plan: ImportPlan): void {
  if (!plan.out) throw new PlanError('--out RUN (the run folder to make) is required');
  if (holdsRun(plan.out)) throw new PlanError(`${plan.out} already holds a run; choose another --out`);
  if (!userInputsOf(plan.data) && !plan.data.spec) throw new PlanError('the images to use the weights on are needed: --unlabeled DIR (and --labeled), or --data SPEC');
}

export async function importWeights(plan: ImportPlan, compute: RecordedCompute): Promise<{ run: string; layout: WeightsLayout }> {
  checkImportPlan(plan);
  const layout = await readPretrained(plan.file);
  try {
    confirmArchitecture(layout, plan.encoder, plan.file);
    const d = plan.data;
    const inputs = userInputsOf(d);
    const shape = { imageSize: d.imageSize && d.imageSize !== 'auto' ? d.imageSize : weightsImageSize(layout.metadata), channels: layout.encoder.inChannels as 1 | 3, skipBad: plan.skipBadImages } as const;
    const data: OpenedDataset = inputs ? await asPlanError(() => openInputs(inputs, shape)) : await openDataset(d.spec!, shape);
    const seed = plan.seed ?? 0;
    const model = pretrainedSimCLR(layout, { layers: 3, outDim: 128 }, seed, plan.file);
    const config = newRunConfig(inputs ? data.source : d.spec!, d.test ?? null, data, { encoder: layout.encoder, headLayers: model.head.layers.length, headDim: model.head.dimAfter(model.head.layers.length), epochs: 0, seed }, plan.skipBadImages ?? false, compute);
    config.norm = weightsNorm(layout, data);
    if (inputs) config.inputs = inputs;
    config.chosen = { imageSize: shape.imageSize === PUBLISHED_IMAGE_SIZE && !d.imageSize ? `the weights' (${PUBLISHED_IMAGE_SIZE})` : 'set by --image-size', channels: "the weights'" };
    const run = new RunFolder(plan.out);
    run.writeJson('config.json', { ...config, source: { file: plan.file, layout: layout.source, head: layout.head ? 'from the file' : 'fresh' } });
    saveCheckpoint(run, PRETRAIN_CHECKPOINT, model, null, { epoch: 0, step: 0, stage: PRETRAIN_CHECKPOINT, config: config.pretrain });
    model.dispose();
    data.stored?.close();
    return { run: plan.out, layout };
  } finally {
    for (const v of layout.state.values()) v.dispose();
  }
}
