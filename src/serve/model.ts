// The classifier a server answers with: a run's stage loaded once, laid out for the
// process's compute settings, predicting top-k classes for batches of decoded images.
import * as t from '../torch';
import { evalInput } from '../augment';
import { decodeImageBytes } from '../data';
import { forwardIn, holdForInference } from '../nn';
import type { Classifier } from '../models';
import { loadClassifier, openRun, type RunConfig } from '../run/folder';
import { defaultStage } from '../export';

export interface ClassProbability {
  class: string;
  probability: number;
}

export class ServedModel {
  readonly frame: number;
  private disposed = false;
  private constructor(
    readonly run: string,
    readonly stage: string,
    readonly config: RunConfig,
    private readonly model: Classifier,
  ) {
    this.frame = config.channels * config.imageSize * config.imageSize;
  }

  /** Loads a run's classifier (default: distill-*, else finetune-*). */
  static load(run: string, stage?: string): ServedModel {
    const opened = openRun(run);
    const chosen = stage || defaultStage(opened.run, run);
    const { model } = loadClassifier(opened.run, chosen);
    holdForInference(model); // held for the server's life: batch norm folded once
    return new ServedModel(run, chosen, opened.config, model);
  }

  get classes(): string[] {
    return this.config.classes;
  }

  /** An image's bytes as the model's input frame; throws on anything sharp cannot decode. */
  decode(bytes: Buffer): Promise<Uint8Array> {
    return decodeImageBytes(bytes, this.config.imageSize, this.config.channels);
  }

  /** Softmax probabilities [n][classes] for n decoded frames, in one forward pass. */
  probabilities(frames: Uint8Array[]): Float32Array[] {
    if (this.disposed) throw new Error('the model was closed');
    const { imageSize: s, channels: c, norm } = this.config;
    const n = frames.length;
    const pixels = new Uint8Array(n * this.frame);
    frames.forEach((f, i) => pixels.set(f, i * this.frame));
    const probs = t.tidy(() => {
      const x = t.fromBytes(pixels, [n, c, s, s], 'uint8');
      return t.noGrad(() => forwardIn(this.model, evalInput(x, s, norm)).softmax(1)).data() as Float32Array;
    });
    const k = this.classes.length;
    return frames.map((_, i) => probs.slice(i * k, (i + 1) * k));
  }

  /** The k most probable classes, most probable first. */
  topK(probs: Float32Array, k: number): ClassProbability[] {
    return [...probs]
      .map((p, i) => ({ class: this.classes[i]!, probability: p }))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, k);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.model.dispose();
  }
}
