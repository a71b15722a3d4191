// SGD with momentum, Nesterov and weight decay, matching torch.optim.SGD's update.
import { keep, noGrad, type Tensor } from '../torch';
import type { NamedParams } from './params';
import { MomentumOptimizer } from './base';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export class SGD extends MomentumOptimizer {
  constructor(
    params: Tensor[] | NamedParams,
    readonly options: SGDOptions,
  ) {
    super(params, options.lr, 'SGD');
  }

  step(lr = this.options.lr): void {
    const momentum = this.options.momentum ?? 0;
    const wd = this.options.weightDecay ?? 0;
    noGrad(() => {
      for (const [name, p] of this.params) {
        const g = p.grad;
        if (g === null) continue;
        if (wd !== 0) g.add_(p, wd);
        let update = g;
        if (momentum !== 0) {
          let buf = this.buffers.get(name);
          if (!buf) {
            buf = keep(g.clone()); // optimiser state outlives any scope
            this.buffers.set(name, buf);
          } else {
            buf.mul_(momentum).add_(g);
          }
          if (this.options.nesterov) g.add_(buf, momentum);
          else update = buf;
        }
        p.add_(update, -lr);
        g.dispose();
      }
    });
  }
}
