// LARS (layer-wise adaptive rate scaling) as SimCLR's official optimiser applies it:
// weight decay is added to the gradient, the learning rate is scaled per layer by
// trust * ||w|| / ||g||, and the momentum buffer accumulates the scaled step.
import * as t from '../torch';
import { keep, noGrad, type Tensor } from '../torch';
import { isNormOrBias, type NamedParams } from './params';
import { MomentumOptimizer } from './base';

export interface LARSOptions {
  lr: number;
  /** Default 0.9. */
  momentum?: number;
  /** Default 1e-6 (ImageNet; the paper uses 1e-4 on CIFAR). */
  weightDecay?: number;
  /** eta. Default 0.001. */
  trustCoefficient?: number;
  nesterov?: boolean;
  /** Parameters that get no weight decay. Default: batch-norm parameters and biases (1-d). */
  excludeFromWeightDecay?: (name: string, p: Tensor) => boolean;
  /** Parameters whose rate is not adapted. Default: the same as excludeFromWeightDecay. */
  excludeFromAdaptation?: (name: string, p: Tensor) => boolean;
}

export class LARS extends MomentumOptimizer {
  constructor(
    params: Tensor[] | NamedParams,
    readonly options: LARSOptions,
  ) {
    super(params, options.lr, 'LARS');
  }

  step(lr = this.options.lr): void {
    const o = this.options;
    const momentum = o.momentum ?? 0.9;
    const wd = o.weightDecay ?? 1e-6;
    const eta = o.trustCoefficient ?? 0.001;
    const noDecay = o.excludeFromWeightDecay ?? isNormOrBias;
    const noAdapt = o.excludeFromAdaptation ?? noDecay;
    noGrad(() => {
      for (const [name, p] of this.params) {
        t.tidy(() => {
          let g = p.grad;
          if (g === null) return;
          if (wd !== 0 && !noDecay(name, p)) g = g.add(p, wd);
          let step: Tensor;
          if (noAdapt(name, p)) {
            step = g.mul(lr);
          } else {
            // trust = eta ||w|| / ||g||, or 1 where either norm is 0; kept on the device (no sync).
            const wNorm = p.norm();
            const gNorm = g.norm();
            const ok = wNorm.gt(0).logicalAnd(gNorm.gt(0));
            const trust = t.where(ok, wNorm.mul(eta).div(t.where(ok, gNorm, t.onesLike(gNorm))), t.onesLike(wNorm));
            step = g.mul(trust.mul(lr));
          }
          let buf = this.buffers.get(name);
          if (!buf) {
            buf = keep(t.zerosLike(p));
            this.buffers.set(name, buf);
          }
          buf.mul_(momentum).add_(step);
          p.sub_(o.nesterov ? buf.mul(momentum).add(step) : buf);
        });
      }
    });
  }
}
