// The PyTorch conversions of the official SimCLRv2 checkpoints: recognised by their names.
import type { Tensor } from '../../torch';
import type { WeightsLayout } from './layouts';

/** The layout of a SimCLRv2 conversion, or null when the names are not one. */
export function simclrv2Layout(_tensors: Map<string, Tensor>, _where: string): WeightsLayout | null {
  return null;
}
