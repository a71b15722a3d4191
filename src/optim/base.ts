// What SGD and LARS share: named parameters, one momentum buffer per parameter, and the
// state a checkpoint saves and restores.
import { keep, type Tensor } from '../torch';
import { named, type NamedParams } from './params';

export abstract class MomentumOptimizer {
  readonly params: NamedParams;
  protected readonly buffers = new Map<string, Tensor>();

  constructor(params: Tensor[] | NamedParams, lr: number, name: string) {
    this.params = named(params);
    if (!(lr >= 0)) throw new Error(`${name}: lr must be a non-negative number, got ${lr}`);
  }

  abstract step(lr?: number): void;

  zeroGrad(): void {
    for (const [, p] of this.params) p.grad = null;
  }

  /** Momentum buffers by parameter name (the optimiser's own tensors: do not dispose). */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.buffers].map(([k, v]) => [`momentum.${k}`, v]));
  }

  /** Restores momentum buffers saved by stateDict(), checking names and shapes. */
  loadStateDict(state: Map<string, Tensor>): void {
    const params = new Map(this.params);
    for (const [key, value] of state) {
      if (!key.startsWith('momentum.')) continue;
      const name = key.slice('momentum.'.length);
      const param = params.get(name);
      if (param === undefined) throw new Error(`optimiser state: '${name}' is not a parameter of this optimiser`);
      const shape = param.shape.join('x');
      if (shape !== value.shape.join('x')) throw new Error(`optimiser state: '${name}' has shape [${value.shape.join('x')}], the parameter [${shape}]`);
      this.buffers.get(name)?.dispose();
      // On the parameter's device (a checkpoint is read onto the CPU).
      this.buffers.set(name, keep(value.device === param.device ? value.clone() : value.to(param.device)));
    }
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}
