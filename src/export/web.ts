// Placeholder, replaced below.
import type { RunConfig } from '../run/folder';
export async function writeWebFolder(_dir: string, _onnx: Uint8Array, _config: RunConfig, _stage: string): Promise<{ path: string; bytes: number }[]> {
  throw new Error('not yet');
}
