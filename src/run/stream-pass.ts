// One pass of a model over image files, streamed: decoded a chunk at a time (the next one
// decoding meanwhile), through the one evaluation forward (src/nn/inference.ts), so any
// number of files runs in bounded memory. predict and embed both use it.
import * as t from '../torch';
import type { Tensor } from '../torch';
import { evalInput, type Normalisation } from '../augment';
import { hostTensor, streamImages, undecodableError } from '../data';
import { holdForInference, inference, type Module } from '../nn';

export interface StreamPass {
  files: readonly string[];
  size: number;
  channels: 1 | 3;
  norm: Normalisation;
  skipBadImages?: boolean;
}

/**
 * Runs `model` over the files; `take` gets each chunk's outputs (float32 rows, in the scope
 * of the chunk) with the files' positions. Returns the files that could not be decoded.
 */
export async function streamPass(p: StreamPass, model: Module, take: (out: Tensor, positions: number[]) => void): Promise<string[]> {
  const skipped: string[] = [];
  const release = holdForInference(model); // folded once for the pass; inference() below shares it
  try {
    for await (const chunk of streamImages(p.files, { size: p.size, channels: p.channels, chunk: 64, square: true })) {
    if (chunk.failed.length > 0 && !p.skipBadImages) {
      const [first] = chunk.failed;
      throw undecodableError(p.files[first!.position]!, first!.error, chunk.failed.length);
    }
    skipped.push(...chunk.failed.map((f) => p.files[f.position]!));
    if (chunk.positions.length === 0) continue;
    inference(model, (forward) => t.tidy(() => take(forward(evalInput(hostTensor(chunk.batch), p.size, p.norm)).to('float32'), chunk.positions)));
    }
  } finally {
    release();
  }
  return skipped;
}
