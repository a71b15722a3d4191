// Parameters as the optimisers see them: a name (for state files and exclusion rules) and a tensor.
import type { Tensor } from '../torch';

export type NamedParams = [string, Tensor][];

export function named(params: Tensor[] | NamedParams): NamedParams {
  if (params.length > 0 && Array.isArray(params[0])) return params as NamedParams;
  return (params as Tensor[]).map((p, i) => [String(i), p]);
}

/** The default exclusion rule: batch-norm parameters and biases, i.e. every 1-d parameter. */
export const isNormOrBias = (_name: string, p: Tensor): boolean => p.ndim <= 1;
