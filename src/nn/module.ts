// Module: parameters, buffers and children under PyTorch's dotted names, so state dicts
// line up with torchvision's (`layer1.0.bn1.running_mean`).
import { Tensor, keep, noGrad, type DType } from '../torch';

/** A trainable tensor owned by a module (gradients on, never freed by tidy()). */
export function parameter(t: Tensor): Tensor {
  keep(t);
  if (!t.requiresGrad) t.requiresGrad_(true);
  return t;
}

export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor | null>();
  private readonly buffers = new Map<string, Tensor | null>();
  private readonly children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  /** Same as forward(); reads like a call of the module. */
  call(x: Tensor): Tensor {
    return this.forward(x);
  }

  protected registerParameter(name: string, t: Tensor | null): Tensor {
    this.params.set(name, t === null ? null : parameter(t));
    return t as Tensor;
  }

  protected registerBuffer(name: string, t: Tensor | null): Tensor {
    if (t !== null) keep(t);
    this.buffers.set(name, t);
    return t as Tensor;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  namedChildren(): [string, Module][] {
    return [...this.children.entries()];
  }

  /** All submodules, depth first, with their dotted names ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.children) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, p] of this.params) if (p !== null) out.push([prefix + name, p]);
    for (const [name, child] of this.children) out.push(...child.namedParameters(`${prefix}${name}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, b] of this.buffers) if (b !== null) out.push([prefix + name, b]);
    for (const [name, child] of this.children) out.push(...child.namedBuffers(`${prefix}${name}.`));
    return out;
  }

  /**
   * Every parameter and buffer this module and its children own, whatever a subclass's
   * namedParameters() leaves out (a classifier's unused head layers): what to() moves and
   * dispose() frees.
   */
  private ownedTensors(): Tensor[] {
    const out: Tensor[] = [];
    for (const t of [...this.params.values(), ...this.buffers.values()]) if (t !== null) out.push(t);
    for (const child of this.children.values()) out.push(...child.ownedTensors());
    return out;
  }

  /** Number of parameter elements (trainable weights). */
  parameterCount(): number {
    return this.parameters().reduce((acc, p) => acc + p.numel, 0);
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * Parameters and buffers by dotted name, in registration order (PyTorch's order:
   * a module's own parameters, its own buffers, then its children). The tensors are
   * the module's own (no copy): do not dispose them.
   */
  stateDict(prefix = ''): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [name, p] of this.params) if (p !== null) out.set(prefix + name, p);
    for (const [name, b] of this.buffers) if (b !== null) out.set(prefix + name, b);
    for (const [name, child] of this.children) for (const [k, v] of child.stateDict(`${prefix}${name}.`)) out.set(k, v);
    return out;
  }

  /**
   * Copies values into the module's parameters and buffers (converting dtype/device).
   * strict: every key must match both ways. Errors name the offending keys.
   */
  loadStateDict(state: Map<string, Tensor> | Record<string, Tensor>, { strict = true } = {}): { missing: string[]; unexpected: string[] } {
    const given = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !given.has(k));
    const unexpected = [...given.keys()].filter((k) => !own.has(k));
    if (strict && (missing.length || unexpected.length)) {
      const parts = [];
      if (missing.length) parts.push(`missing keys: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''}`);
      if (unexpected.length) parts.push(`unexpected keys: ${unexpected.slice(0, 10).join(', ')}${unexpected.length > 10 ? ', ...' : ''}`);
      throw new Error(`loadStateDict: the state does not fit this model (${parts.join('; ')})`);
    }
    for (const [k, target] of own) {
      const src = given.get(k);
      if (!src) continue;
      const a = target.shape.join('x');
      const b = src.shape.join('x');
      if (a !== b) throw new Error(`loadStateDict: '${k}' has shape [${b}] in the state but [${a}] in the model`);
    }
    noGrad(() => {
      for (const [k, target] of own) {
        const src = given.get(k);
        if (src) target.copy_(src);
      }
    });
    return { missing, unexpected };
  }

  /**
   * Moves every parameter and buffer to a device and/or floating dtype, and lays out its
   * 4-D ones (convolution weights) in a memory format, in place.
   */
  to(target: { device?: string; dtype?: DType; memoryFormat?: 'contiguous' | 'channels_last' }): this {
    noGrad(() => {
      for (const t of this.ownedTensors()) {
        let next: Tensor | null = null;
        if (target.dtype && isFloat(t.dtype)) next = t.to(target.dtype);
        if (target.memoryFormat && t.shape.length === 4 && !(next ?? t).isContiguous(target.memoryFormat)) {
          const laid = (next ?? t).contiguous(target.memoryFormat);
          next?.dispose();
          next = laid;
        }
        if (target.device && t.device !== target.device) {
          const moved = (next ?? t).to(target.device);
          next?.dispose();
          next = moved;
        }
        if (next) t.replaceWith(next);
      }
    });
    return this;
  }

  /** Clears accumulated gradients (sets them to none, as PyTorch's set_to_none). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Frees every parameter and buffer now. */
  dispose(): void {
    for (const t of this.ownedTensors()) t.dispose();
  }
}

function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}
