// SGD with momentum, Nesterov and weight decay, matching torch.optim.SGD's update.
import { keep, noGrad, type Tensor } from '../torch';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export class SGD {
  private readonly buffers = new Map<Tensor, Tensor>();
  constructor(
    readonly params: Tensor[],
    readonly options: SGDOptions,
  ) {
    if (!(options.lr >= 0)) throw new Error(`SGD: lr must be a non-negative number, got ${options.lr}`);
  }

  step(lr = this.options.lr): void {
    const momentum = this.options.momentum ?? 0;
    const wd = this.options.weightDecay ?? 0;
    noGrad(() => {
      for (const p of this.params) {
        const g = p.grad;
        if (g === null) continue;
        if (wd !== 0) g.add_(p, wd);
        let update = g;
        if (momentum !== 0) {
          let buf = this.buffers.get(p);
          if (!buf) {
            buf = keep(g.clone()); // optimiser state outlives any scope
            this.buffers.set(p, buf);
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

  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}
