// Learning-rate scaling with the batch size, and SimCLR's warm-up + cosine schedule.

export type LrScaling = 'linear' | 'sqrt';

/** linear: base x batch / 256; sqrt: base x sqrt(batch) (the paper's two rules). */
export function scaleLearningRate(base: number, batchSize: number, scaling: LrScaling = 'linear'): number {
  if (!(batchSize > 0)) throw new Error(`batch size must be positive, got ${batchSize}`);
  return scaling === 'sqrt' ? base * Math.sqrt(batchSize) : (base * batchSize) / 256;
}

export interface WarmupCosineOptions {
  /** Rate at the end of the warm-up. */
  peak: number;
  warmupSteps: number;
  totalSteps: number;
}

/**
 * Linear warm-up from 0 over warmupSteps, then cosine decay to 0 at totalSteps
 * (step counts from 0, as in the official code).
 */
export function warmupCosine(o: WarmupCosineOptions): (step: number) => number {
  if (!(o.totalSteps > 0) || o.warmupSteps < 0 || o.warmupSteps > o.totalSteps) {
    throw new Error(`warmupCosine: need 0 <= warmupSteps (${o.warmupSteps}) <= totalSteps (${o.totalSteps}) and totalSteps > 0`);
  }
  return (step: number): number => {
    if (step < o.warmupSteps) return (o.peak * step) / o.warmupSteps;
    const decay = o.totalSteps - o.warmupSteps;
    if (decay === 0) return o.peak;
    const progress = Math.min(1, (step - o.warmupSteps) / decay);
    return 0.5 * o.peak * (1 + Math.cos(Math.PI * progress));
  };
}
