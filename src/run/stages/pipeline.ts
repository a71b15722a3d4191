// The pipeline as a plan: pretraining, then for each label set the baseline, fine-tuning and
// distillation, continued where it stopped; the report at the end.
import { existsSync, readFileSync } from 'node:fs';
import { RunFolder, holdStopSignal, releaseStopSignal, hasCheckpoint, PRETRAIN_CHECKPOINT } from '../../train';
import { PlanError } from '../errors';
import { parseLabels } from '../folder';
import { buildReport } from '../report';
import type { ProcessGroup } from '../../distributed';
import { isLead, leadProcess, stopAgreed, withWorkers, type WorkersPlan } from '../workers';
import type { ClassifierSettings, ComputePlan, DataPlan, EncoderPlan, Outcome, PretrainSettings } from './types';
import { defined, differences, refuseDifferences } from './resume';
import { runPretrain } from './pretrain';
import { runClassifierStage, stageNameFor } from './classifier';

export interface PipelinePlan {
  out: string;
  resume?: boolean;
  data: DataPlan;
  encoder?: Partial<EncoderPlan>;
  /** Label fractions, each as ClassifierSettings.labels. */
  labels: string[];
  /** Every stage's seed, unless a stage's settings give their own. */
  seed?: number;
  /** The validation split of every classifier stage (ClassifierSettings.val, valFile). */
  val?: string;
  valFile?: string;
  skipBadImages?: boolean;
  compute?: ComputePlan;
  /** Published weights pretraining continues from (--pretrain-init). */
  init?: string;
  /** Where the settings came from (recipe, flag, budget), recorded in config.json. */
  settingSources?: Record<string, string>;
  /**
   * Called once pretraining is done, before the first classifier stage starts: new lengths
   * for the classifier stages (a time budget planned again on the minutes left), recorded
   * as the pipeline's settings so that a resume follows them.
   */
  afterPretrain?: () => Partial<Record<'supervised' | 'finetune' | 'distill', Partial<ClassifierSettings>>> | null;
  pretrain?: Partial<PretrainSettings>;
  supervised?: Partial<ClassifierSettings>;
  finetune?: Partial<ClassifierSettings>;
  distill?: Partial<ClassifierSettings>;
}

/** What a pipeline records (pipeline.json) so that running it again continues it with the same stage settings. */
type RecordedPipeline = Pick<PipelinePlan, 'seed' | 'val' | 'valFile' | 'pretrain' | 'supervised' | 'finetune' | 'distill'>;
const PIPELINE_FILE = 'pipeline.json';
const PIPELINE_STAGES = ['pretrain', 'supervised', 'finetune', 'distill'] as const;

/**
 * The plan's stage settings merged over the recorded ones; a given setting that differs from
 * the record is refused. Every worker reads the record before rank 0 writes a new one.
 */
function continuePipeline(run: RunFolder, plan: PipelinePlan, workers: ProcessGroup | null): RecordedPipeline {
  const given: RecordedPipeline = { ...defined({ seed: plan.seed, val: plan.val, valFile: plan.valFile }) };
  for (const stage of PIPELINE_STAGES) given[stage] = defined(plan[stage]) as never;
  const file = run.path(PIPELINE_FILE);
  const recorded = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as RecordedPipeline) : null;
  workers?.barrier();
  if (!recorded) {
    if (isLead(workers)) run.writeJson(PIPELINE_FILE, given);
    return given;
  }
  const diffs = differences(recorded as Record<string, unknown>, { seed: plan.seed, val: plan.val, valFile: plan.valFile });
  for (const stage of PIPELINE_STAGES) {
    diffs.push(...differences((recorded[stage] ?? {}) as Record<string, unknown>, { ...plan[stage] }, stage === 'pretrain' ? new Set(['knn']) : undefined).map((d) => d.replace('--', `--${stage}-`)));
  }
  refuseDifferences(plan.out, diffs);
  const merged: RecordedPipeline = { ...recorded, ...given };
  for (const stage of PIPELINE_STAGES) merged[stage] = { ...recorded[stage], ...given[stage] } as never;
  return merged;
}

/**
 * Pretraining, then for each label fraction the baseline, fine-tuning and distillation; a
 * stopped stage stops the pipeline. With workers (given, or named by the environment), every
 * stage runs on all of them in turn in the one group; rank 0 alone writes and reports.
 */
export async function runPipeline(plan: PipelinePlan, workers?: WorkersPlan): Promise<Outcome> {
  checkPipelinePlan(plan);
  const lead = workers === undefined ? leadProcess() : isLead(workers);
  const done = await withWorkers(workers, (group) => pipelineAs(plan, group));
  // Rank 0 makes the report alone once the workers have left the group: the others do not
  // wait for it in a collective (on a large test set it may outlast SIMCLR_DIST_TIMEOUT).
  if (done.outcome === 'finished' && lead) await reportAtTheEnd(plan.out, done.seed, plan.skipBadImages);
  return done.outcome;
}

/** The plan's own mistakes, found before anything is read (and by --dry-run). */
export function checkPipelinePlan(plan: PipelinePlan): void {
  if (!plan.out) throw new PlanError('--out RUN is required');
  if (plan.labels.length === 0 && !plan.data.labeled) throw new PlanError('the pipeline needs at least one label fraction, or --labeled');
  for (const l of plan.labels) parseLabels(l);
}

async function pipelineAs(plan: PipelinePlan, workers: ProcessGroup | null): Promise<{ outcome: Outcome; seed: number }> {
  const run = new RunFolder(plan.out);
  const settings = continuePipeline(run, plan, workers);
  const seed = settings.seed === undefined ? {} : { seed: settings.seed };
  const ended = (outcome: Outcome) => ({ outcome, seed: settings.seed ?? 0 });
  const stop = holdStopSignal();
  try {
    const started = await runPretrain(
      {
        out: plan.out,
        resume: plan.resume || hasCheckpoint(run, PRETRAIN_CHECKPOINT),
        data: plan.data,
        encoder: plan.encoder,
        settings: { ...seed, ...settings.pretrain },
        skipBadImages: plan.skipBadImages,
        compute: plan.compute,
        ...(plan.init ? { init: plan.init } : {}),
      },
      workers,
    );
    if (started === 'stopped') return ended('stopped');
    const replanned = !hasStarted(run, plan) && isLead(workers) ? plan.afterPretrain?.() : null;
    if (replanned) {
      for (const kind of ['supervised', 'finetune', 'distill'] as const) settings[kind] = { ...settings[kind], ...replanned[kind] };
      run.writeJson(PIPELINE_FILE, settings);
    }
    if (plan.settingSources && isLead(workers)) recordSources(run, plan.settingSources);
    // The user's labeled set is one label set; a fully labeled --data gives one per fraction.
    for (const labels of plan.data.labeled ? [undefined] : plan.labels) {
      for (const kind of ['supervised', 'finetune', 'distill'] as const) {
        const labelSet = labels === undefined ? {} : { labels };
        if (stopAgreed(stop, workers)) return ended('stopped');
        // The previous stage's files are all written (rank 0 writes them) before any worker looks.
        workers?.barrier();
        const outcome = await runClassifierStage(
          {
            kind,
            run: plan.out,
            resume: existsSync(run.path(`${stageNameFor(kind, { labels: labels ?? '', labeled: plan.data.labeled })}.json`)),
            settings: { ...seed, ...defined({ val: settings.val, valFile: settings.valFile }), ...settings[kind], ...labelSet },
            skipBadImages: plan.skipBadImages,
            compute: plan.compute,
          },
          workers,
        );
        if (outcome === 'stopped') return ended(outcome);
      }
    }
    return ended('finished');
  } finally {
    releaseStopSignal();
  }
}

/** Whether a classifier stage of the pipeline has begun (its checkpoint or result is there): then its length stands. */
function hasStarted(run: RunFolder, plan: PipelinePlan): boolean {
  return ['supervised', 'finetune', 'distill'].some((kind) => existsSync(run.path(`${stageNameFor(kind as 'finetune', { labels: plan.labels[0] ?? '', labeled: plan.data.labeled })}.json`)));
}

/** The full report once every stage is trained: the classifier on the test set, views, the embedding map. */
export async function reportAtTheEnd(out: string, seed: number, skipBadImages?: boolean): Promise<void> {
  try {
    const r = await buildReport({ run: out, seed, skipBadImages });
    const s = r.analysis.seconds;
    console.log(`report: ${r.analysis.stage} on ${r.analysis.testImages} test images, views, embedding map (${(s.classifier + s.views + s.map).toFixed(1)} s)`);
  } catch (e) {
    // A run without a labeled test set still has its results and curves in the report.
    if (!(e instanceof PlanError)) throw e;
    console.log(`report: results and curves only (${e.message})`);
  }
}


/** The run's config.json says where its settings came from (the first time the pipeline runs). */
function recordSources(run: RunFolder, sources: Record<string, string>): void {
  const config = JSON.parse(readFileSync(run.path('config.json'), 'utf8')) as Record<string, unknown>;
  if (config.settingSources) return;
  run.writeJson('config.json', { ...config, settingSources: sources });
}
