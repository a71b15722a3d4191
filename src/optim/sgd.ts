// SGD with momentum, Nesterov and weight decay, matching torch.optim.SGD's update.
import { keep, noGrad, type Tensor } from '../torch';
import { named, type NamedParams } from './params';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export class SGD {
  readonly params: NamedParams;
  private readonly buffers = new Map<string, Tensor>();
  constructor(
    params: Tensor[] | NamedParams,
    readonly options: SGDOptions,
  ) {
    this.params = named(params);
    if (!(options.lr >= 0)) throw new Error(`SGD: lr must be a non-negative number, got ${options.lr}`);
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

  zeroGrad(): void {
    for (const [, p] of this.params) p.grad = null;
  }

  /** Momentum buffers by parameter name (the optimiser's own tensors: do not dispose). */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.buffers].map(([k, v]) => [`momentum.${k}`, v]));
  }

  loadStateDict(state: Map<string, Tensor>): void {
    loadMomentum(this.buffers, this.params, state);
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}

/** Restores momentum buffers saved by stateDict(), checking names and shapes. */
export function loadMomentum(buffers: Map<string, Tensor>, params: NamedParams, state: Map<string, Tensor>): void {
  const shapes = new Map(params.map(([n, p]) => [n, p.shape.join('x')]));
  for (const [key, value] of state) {
    if (!key.startsWith('momentum.')) continue;
    const name = key.slice('momentum.'.length);
    const shape = shapes.get(name);
    if (shape === undefined) throw new Error(`optimiser state: '${name}' is not a parameter of this optimiser`);
    if (shape !== value.shape.join('x')) throw new Error(`optimiser state: '${name}' has shape [${value.shape.join('x')}], the parameter [${shape}]`);
    buffers.get(name)?.dispose();
    buffers.set(name, keep(value.clone()));
  }
}
