// `simclr export`: a run's classifier (the distilled student by default, else the fine-tuned
// model) written for use elsewhere: ONNX, torchvision safetensors, or a static web page.
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { saveSafetensors } from '../torch';
import { PlanError } from '../run/errors';
import { defaultClassifierStage, loadClassifier, openRun, type RunConfig } from '../run/folder';
import type { RunFolder } from '../train';
import type { Classifier } from '../models';
import { classifierToOnnx, type PixelInput } from './onnx-model';
import { torchvisionState } from './torchvision';
import { writeWebFolder } from './web';
import { writeAtomic } from './write';

export const EXPORT_FORMATS = ['onnx', 'safetensors-torchvision', 'web'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportPlan {
  run: string;
  /** Default: the distilled model (distill-*), else the fine-tuned one (finetune-*). */
  stage?: string;
  format: ExportFormat;
  /** A file (onnx, safetensors-torchvision) or a folder (web). */
  out: string;
  /** What the ONNX model takes: uint8 pixels (default) or float32 in [0, 1]. */
  input?: PixelInput;
}

export interface ExportResult {
  stage: string;
  format: ExportFormat;
  /** Files written, with their sizes in bytes. */
  files: { path: string; bytes: number }[];
  /** safetensors-torchvision: the Python that builds the model it loads into. */
  python?: string;
}

/** The classifier `predict` and `export` use by default: distill-*, else finetune-*, else any. */
export function defaultStage(run: RunFolder, dir: string): string {
  const stage = defaultClassifierStage(run);
  if (!stage) throw new PlanError(`${dir}: no trained classifier yet (no finetune-*, distill-* or supervised-* stage; run simclr finetune --from ${dir} first)`);
  return stage;
}


const VERSION: string = (require('../../../package.json') as { version: string }).version;

/** The ONNX bytes of a loaded classifier with the run's input settings and names. */
export function onnxBytes(model: Classifier, config: RunConfig, meta: { run: string; stage: string; input?: PixelInput }): Uint8Array {
  model.eval();
  return classifierToOnnx(model, {
    imageSize: config.imageSize,
    channels: config.channels,
    norm: config.norm,
    classes: config.classes,
    input: meta.input,
    producerVersion: VERSION,
    metadata: { run: meta.run, stage: meta.stage },
  });
}

export async function exportRun(plan: ExportPlan): Promise<ExportResult> {
  if (!EXPORT_FORMATS.includes(plan.format)) throw new PlanError(`--format must be ${EXPORT_FORMATS.join(', ')}, got '${plan.format}'`);
  if (!plan.out) throw new PlanError('--out is required: the file (or, for --format web, the folder) to write');
  const { run, config } = openRun(plan.run);
  const stage = plan.stage || defaultStage(run, plan.run);
  const { model } = loadClassifier(run, stage);
  try {
    const meta = { run: plan.run, stage, input: plan.input };
    if (plan.format === 'onnx') {
      writeAtomic(plan.out, onnxBytes(model, config, meta));
      return { stage, format: plan.format, files: [{ path: plan.out, bytes: statSync(plan.out).size }] };
    }
    if (plan.format === 'safetensors-torchvision') {
      const { tensors, metadata, python } = torchvisionState(model, config);
      try {
        mkdirSync(dirname(resolve(plan.out)), { recursive: true });
        saveSafetensors(plan.out, tensors, { ...metadata, run: plan.run, stage });
      } finally {
        for (const v of tensors.values()) v.dispose();
      }
      return { stage, format: plan.format, files: [{ path: plan.out, bytes: statSync(plan.out).size }], python };
    }
    const files = await writeWebFolder(plan.out, onnxBytes(model, config, { ...meta, input: 'uint8' }), config, stage, plan.run);
    return { stage, format: plan.format, files };
  } finally {
    model.dispose();
  }
}
