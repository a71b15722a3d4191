// Pretraining as a plan: a new run folder (its config, from a data set or the user's
// inputs) or a resumed one, on the workers the plan or the environment names.
import { existsSync } from 'node:fs';
import { isSmallImage } from '../../augment';
import { labeledOnly, openDataset, openInputs, skippedLine, type ImageDataset, type OpenedDataset } from '../../data';
import { asPlanError, userInputsOf } from '../data';
import { RunFolder, holdStopSignal, releaseStopSignal, pretrain, PRETRAIN_CHECKPOINT } from '../../train';
import { PRETRAIN_DEFAULTS, defaultPretrainLr } from '../defaults';
import { PlanError } from '../errors';
import { encoderFor, holdsRun, newRunConfig, openRun, testData, trainData, type RecordedCompute, type RunConfig } from '../folder';
import { stageMeta } from '../results';
import type { ProcessGroup } from '../../distributed';
import { stopAgreed, withWorkers, type WorkersPlan } from '../workers';
import type { DataPlan, EncoderPlan, Outcome, PretrainPlan, PretrainSettings } from './types';
import { applyCompute, checkCompute } from './compute';
import { confirmArchitecture, pretrainedSimCLR, readPretrained, weightsImageSize, weightsNorm } from '../import';
import { defined, differences, refuseDifferences, withLaterDefaults } from './resume';

/** What a pretraining run records of its plan, to check a resume against. */
interface RecordedPretrainPlan {
  data: DataPlan;
  encoder: EncoderPlan;
  settings: PretrainSettings;
}

/**
 * Pretrains on the workers given (the pipeline's), else on those the environment names
 * (--nproc, or a launcher's WORLD_SIZE/RANK/MASTER_ADDR/MASTER_PORT), else on this process.
 */
export async function runPretrain(plan: PretrainPlan, workers?: WorkersPlan): Promise<Outcome> {
  // Decided before the workers meet: rank 0 writes the run folder only after all have met,
  // so every worker sees the folder as it was and takes the same path. Inside a group that
  // met already (the pipeline's), the plan says exactly what to do.
  const decided = workers === undefined ? { ...plan, resume: resumesRun(plan) } : plan;
  checkPretrainPlan(decided);
  const compute = applyCompute(plan.compute);
  return withWorkers(workers, (group) => pretrainAs(decided, compute, group));
}

/**
 * Whether --resume continues a run: always when the plan names no images (there is nothing
 * else it could mean); with images, only where the folder holds a run, so that a command
 * that always carries --resume (a pod a Kubernetes PyTorchJob restarts, a requeued Slurm job)
 * starts the run the first time and continues it after.
 */
export function resumesRun(plan: PretrainPlan): boolean {
  if (!plan.resume) return false;
  const namesImages = Boolean(plan.data?.spec || userInputsOf(plan.data));
  return !namesImages || existsSync(`${plan.out}/config.json`);
}

/**
 * The plan's own mistakes, found before any image is read or anything written (the command
 * runs them first; --dry-run runs only them): the run folder, and where a new run's images come from.
 */
export function checkPretrainPlan(plan: PretrainPlan): void {
  if (!plan.out) throw new PlanError('--out RUN (the run folder) is required');
  if (resumesRun(plan)) return void openRun(plan.out);
  const userInputs = userInputsOf(plan.data);
  if (userInputs && plan.data?.spec) throw new PlanError('give --data SPEC, or --unlabeled DIR and --labeled DIR|FILE.csv, not both');
  if (!plan.data?.spec && !userInputs) throw new PlanError('--unlabeled DIR (your images) or --data SPEC (an image folder, fashion-mnist, cifar10-bin:DIR, ...) is required');
  // A folder with a config but no checkpoint never trained (it stopped at once): it may be planned anew.
  if (holdsRun(plan.out)) {
    throw new PlanError(`${plan.out} already holds a run; pass --resume to continue it or choose another --out`);
  }
}

async function pretrainAs(plan: PretrainPlan, compute: RecordedCompute, workers: ProcessGroup | null): Promise<Outcome> {
  const lead = !workers || workers.rank === 0;
  let config: RunConfig & { plan?: RecordedPretrainPlan };
  let data: ImageDataset;
  let run: RunFolder;
  let init: Awaited<ReturnType<typeof readPretrained>> | null = null;
  const resume = plan.resume ?? false;
  if (resume) {
    ({ run, config } = openRun(plan.out));
    const recorded = config.plan;
    refuseDifferences(plan.out, [
      ...differences(recorded?.data as Record<string, unknown> | undefined, { ...plan.data }),
      ...differences(recorded?.encoder as Record<string, unknown> | undefined, { ...plan.encoder }),
      ...differences(withLaterDefaults(recorded?.settings, PRETRAIN_DEFAULTS), { ...plan.settings }, new Set(['knn'])),
    ]);
    // The last stretch's settings: the checkpoint's (a --force-settings resume changes them), else the run's.
    const lastCompute = (stageMeta(run, PRETRAIN_CHECKPOINT)?.config as { compute?: RecordedCompute } | undefined)?.compute ?? config.compute;
    checkCompute(plan.out, lastCompute, compute, plan.compute?.force);
    data = await trainData(config, plan.skipBadImages);
    checkPretrainBatch(config.pretrain, data.count, workers);
  } else {
    const userInputs = userInputsOf(plan.data);
    const d = plan.data as DataPlan;
    // --init FILE: the weights decide the architecture, the input size and the normalisation.
    init = plan.init ? await readPretrained(plan.init) : null;
    if (init) {
      confirmArchitecture(init, plan.encoder, plan.init!);
      pretrainedSimCLR(init, { layers: 3, outDim: 128 }, 0, plan.init!).dispose(); // every encoder tensor there, each shape fitting
    }
    const shape = { imageSize: d.imageSize ?? (init ? weightsImageSize(init.metadata) : 'auto'), channels: init ? (init.encoder.inChannels as 1 | 3) : d.channels ?? 'auto', skipBad: plan.skipBadImages } as const;
    const opened: OpenedDataset = userInputs ? await asPlanError(() => openInputs(userInputs, shape)) : await openDataset(d.spec, shape);
    data = opened;
    const s: PretrainSettings = { ...PRETRAIN_DEFAULTS, ...defined(plan.settings) };
    const encoder: EncoderPlan = { depth: 18, width: 1, sk: false, zeroInitResidual: false, ...defined(plan.encoder) };
    const warmup = s.warmupEpochs ?? (s.epochs >= 10 ? Math.round(s.epochs / 10) : 0);
    config = newRunConfig(
      userInputs ? opened.source : d.spec,
      d.test ?? null,
      opened,
      {
        encoder: init ? init.encoder : encoderFor(encoder, data),
        epochs: s.epochs,
        batchSize: s.batch,
        lr: s.lr ?? defaultPretrainLr(data.size, s.lrScaling),
        lrScaling: s.lrScaling,
        seed: s.seed,
        temperature: s.temperature ?? (isSmallImage(data.size) ? 0.5 : 0.1),
        warmupEpochs: Math.min(warmup, s.epochs),
        maxImages: s.maxImages,
        batchNorm: s.batchNorm,
      },
      plan.skipBadImages ?? false,
      compute,
    );
    if (userInputs) config.inputs = userInputs;
    if (init) {
      config.norm = weightsNorm(init, opened);
      config.init = { file: plan.init!, layout: init.source, head: init.head ? 'from the file' : 'fresh' };
      if (init.head) Object.assign(config.pretrain, { headLayers: init.head.layers, headDim: init.head.outDim });
    }
    config.pretrain.views = { ...config.pretrain.views, crop: { scale: [s.cropMin, 1], ratio: [3 / 4, 4 / 3], pixelAligned: s.pixelCrops }, interpolation: s.interpolation };
    // Every setting as it took effect, so that a resume can be checked against all of them.
    config.plan = {
      data: { ...(userInputs ? { unlabeled: userInputs.unlabeled, labeled: userInputs.labeled ?? undefined } : { spec: d.spec }), test: d.test ?? null, imageSize: d.imageSize ?? 'auto', channels: d.channels ?? 'auto' } as DataPlan,
      encoder,
      settings: { ...s, lr: config.pretrain.lr, temperature: config.pretrain.temperature, warmupEpochs: config.pretrain.warmupEpochs },
    };
    checkPretrainBatch(config.pretrain, data.count, workers);
    // The kNN monitor needs labeled images and a test set: found before anything is written.
    if (s.knn) {
      knnBank(data);
      await testData(config, undefined, plan.skipBadImages);
    }
    run = new RunFolder(plan.out);
    if (lead) run.writeJson('config.json', config);
    if (lead) console.log(`${data.source}: ${data.size}x${data.size}, ${data.channels === 1 ? 'gray' : 'RGB'} (size: ${opened.auto.imageSize}; channels: ${opened.auto.channels})`);
  }
  if (lead) reportSkipped(data);
  const p = config.pretrain;
  const pool = p.maxImages ? Math.min(p.maxImages, data.count) : data.count;
  if (workers && p.batchSize % workers.worldSize !== 0 && lead) console.log(`note: the batch (${p.batchSize}) does not split evenly between ${workers.worldSize} workers; the first ones take one image more`);
  if (lead) console.log(`pretraining ResNet-${p.encoder.depth} (width ${p.encoder.width}${p.encoder.skRatio ? ', SK' : ''}) on ${pool} images of ${data.source}, ${p.epochs} epochs, batch ${p.batchSize}`);
  const knn = plan.settings?.knn ?? false;
  const knnSets = knn ? { train: knnBank(data), test: await testData(config, undefined, plan.skipBadImages) } : undefined;
  const stop = holdStopSignal();
  try {
    const { model, finished } = await pretrain({ data, norm: config.norm, run, config: p, resume, stop, knn: knnSets, compute, workers, checkWeights: process.env.SIMCLR_CHECK_WEIGHTS === '1', init: init?.state });
    model.dispose();
    const stopped = stopAgreed(stop, workers);
    return finished && !stopped ? 'finished' : 'stopped';
  } finally {
    releaseStopSignal();
    for (const v of init?.state.values() ?? []) v.dispose();
  }
}

/**
 * Pretraining's batch against its images and the workers, before anything is written: a
 * PlanError (exit 2), which a launcher's restart would only repeat, so it does not restart.
 */
export function checkPretrainBatch(p: { batchSize: number; maxImages?: number }, count: number, workers: Pick<ProcessGroup, 'worldSize'> | null): void {
  const pool = p.maxImages ? Math.min(p.maxImages, count) : count;
  if (workers && workers.worldSize > 1 && p.batchSize < workers.worldSize) {
    throw new PlanError(`pretraining's --batch ${p.batchSize} must hold at least one image per worker (${workers.worldSize} workers): give --batch ${workers.worldSize} or more, or fewer workers`);
  }
  if (pool < p.batchSize) {
    throw new PlanError(`pretraining's --batch ${p.batchSize} is more than the ${pool} images to pretrain on${p.maxImages && p.maxImages < count ? ' (--max-images)' : ''}: a step needs a whole batch (a short last batch is dropped)`);
  }
}

export function reportSkipped(ds: ImageDataset): void {
  if (ds.skipped.bad.length) console.log(skippedLine(ds.skipped.bad));
}


/** The kNN monitor's bank: the labeled training images (of a user's set, those it labels). */
function knnBank(data: ImageDataset): ImageDataset {
  const bank = labeledOnly(data);
  if (!bank) throw noKnnBank();
  return bank;
}

/** The kNN monitor without labeled images to compare with (also --dry-run's). */
export const noKnnBank = (): PlanError => new PlanError('--knn compares with labeled images: give --labeled DIR|FILE.csv as well, or leave --knn out');
