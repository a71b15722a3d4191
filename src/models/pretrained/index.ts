// Published weights: torchvision/timm ResNets, our own exports and SimCLRv2 conversions, read
// from safetensors or torch.save files without Python (src/models/pretrained/*).
import type { Tensor } from '../../torch';
import { readWeights } from './weights';
import { readLayout, type WeightsLayout } from './layouts';

export { WeightsFileError } from './torch-file';
export { PickleError } from './pickle';
export type { WeightsLayout, WeightsSource } from './layouts';
export { readWeights, weightsFileSummary } from './weights';

/** ImageNet's per-channel mean and std, which torchvision's and timm's weights were trained with. */
export const IMAGENET_NORM = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
/** SimCLRv2's checkpoints take pixels in [0, 1] as they are. */
export const UNIT_NORM = { mean: [0, 0, 0], std: [1, 1, 1] };

/** A weights file read and mapped onto our model; the tensors it leaves out are disposed. */
export async function loadPretrained(file: string): Promise<WeightsLayout & { metadata: Record<string, string> }> {
  const { tensors, metadata } = await readWeights(file);
  let layout: WeightsLayout;
  try {
    layout = readLayout(tensors, file);
  } catch (e) {
    for (const v of tensors.values()) v.dispose();
    throw e;
  }
  const kept = new Set<Tensor>(layout.state.values());
  for (const v of tensors.values()) if (!kept.has(v)) v.dispose();
  return { ...layout, encoder: { ...layout.encoder, ...exportedEncoder(layout, metadata) }, metadata };
}

/** Our own export states its encoder's width exactly (a stem's channels round it) and its shortcut variant. */
function exportedEncoder(layout: WeightsLayout, metadata: Record<string, string>): Partial<WeightsLayout['encoder']> {
  if (layout.source !== 'simclr-ts' || !metadata.encoder) return {};
  try {
    const e = JSON.parse(metadata.encoder) as { width?: unknown; depth?: unknown; skStride1Pool?: unknown };
    const fits = e.depth === layout.encoder.depth && typeof e.width === 'number' && Math.abs(Math.round(64 * e.width) - 64 * layout.encoder.width) < 1e-9;
    return fits ? { width: e.width as number, ...(e.skStride1Pool === true ? { skStride1Pool: true } : {}) } : {};
  } catch {
    return {};
  }
}
