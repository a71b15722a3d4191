// `simclr export`: a run's classifier (the distilled student by default, else the fine-tuned
// model) written for use elsewhere: ONNX, torchvision safetensors, or a static web page.
import { mkdirSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { saveSafetensors } from '../torch';
import { PlanError } from '../run/errors';
import { defaultStage, loadClassifier, openRun, pretrainedModel, type RunConfig } from '../run/folder';
import { PRETRAIN_CHECKPOINT } from '../train';
import type { Tensor } from '../torch';
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

export { defaultStage };


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
  if (plan.stage === PRETRAIN_CHECKPOINT) return exportPretrained(plan, run, config);
  const stage = plan.stage || defaultStage(run, plan.run);
  const { model } = loadClassifier(run, stage);
  try {
    // Exported files name the run by its folder's name, never by its path on this machine.
    const runName = basename(resolve(plan.run));
    const meta = { run: runName, stage, input: plan.input };
    if (plan.format === 'onnx') {
      writeAtomic(plan.out, onnxBytes(model, config, meta));
      return { stage, format: plan.format, files: [{ path: plan.out, bytes: statSync(plan.out).size }] };
    }
    if (plan.format === 'safetensors-torchvision') {
      const { tensors, metadata, python } = torchvisionState(model, config);
      try {
        mkdirSync(dirname(resolve(plan.out)), { recursive: true });
        saveSafetensors(plan.out, tensors, { ...metadata, run: runName, stage });
      } finally {
        for (const v of tensors.values()) v.dispose();
      }
      return { stage, format: plan.format, files: [{ path: plan.out, bytes: statSync(plan.out).size }], python };
    }
    const files = await writeWebFolder(plan.out, onnxBytes(model, config, { ...meta, input: 'uint8' }), config, stage, runName);
    return { stage, format: plan.format, files };
  } finally {
    model.dispose();
  }
}

/**
 * The pretrained encoder and projection head (--stage pretrain) as safetensors: the encoder
 * under torchvision's names (a plain width-1 ResNet loads into torchvision as it is), the
 * head as head.<i>.*; simclr import reads it back whole.
 */
function exportPretrained(plan: ExportPlan, run: RunFolder, config: RunConfig): ExportResult {
  if (plan.format !== 'safetensors-torchvision') throw new PlanError(`--stage pretrain exports the encoder and head as --format safetensors-torchvision; ${plan.format} takes a classifier stage`);
  const model = pretrainedModel(run, config);
  try {
    const tensors = new Map<string, Tensor>();
    for (const [name, v] of model.stateDict()) tensors.set(name.replace(/^encoder\./, ''), v);
    const e = config.pretrain.encoder;
    mkdirSync(dirname(resolve(plan.out)), { recursive: true });
    saveSafetensors(plan.out, tensors, {
      format: 'simclr-ts',
      stage: PRETRAIN_CHECKPOINT,
      encoder: JSON.stringify(e),
      norm: JSON.stringify(config.norm),
      image_size: String(config.imageSize),
      channels: String(config.channels),
    });
    return { stage: PRETRAIN_CHECKPOINT, format: plan.format, files: [{ path: plan.out, bytes: statSync(plan.out).size }] };
  } finally {
    model.dispose();
  }
}
