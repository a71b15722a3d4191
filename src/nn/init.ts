// Weight initialisers, with PyTorch's fan conventions (fan_in = in/groups * kh * kw).
import { noGrad, type Tensor } from '../torch';

export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  const s = t.shape;
  if (s.length < 2) throw new Error(`fans: need at least 2 dims, got [${s.join(', ')}]`);
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: s[1]! * receptive, fanOut: s[0]! * receptive };
}

const gain = (nonlinearity: 'relu' | 'linear', a = 0): number => (nonlinearity === 'relu' ? Math.sqrt(2 / (1 + a * a)) : 1);

/** He normal init: std = gain / sqrt(fan). torchvision's ResNets use mode 'fanOut'. */
export function kaimingNormal_(t: Tensor, { mode = 'fanIn', nonlinearity = 'relu' }: { mode?: 'fanIn' | 'fanOut'; nonlinearity?: 'relu' | 'linear' } = {}): Tensor {
  const f = fans(t);
  const std = gain(nonlinearity) / Math.sqrt(mode === 'fanIn' ? f.fanIn : f.fanOut);
  return noGrad(() => t.normal_(0, std));
}

/** PyTorch's default for Linear and Conv weights: He uniform with a = sqrt(5), i.e. bound 1/sqrt(fan_in). */
export function defaultWeight_(t: Tensor): Tensor {
  const bound = 1 / Math.sqrt(fans(t).fanIn);
  return noGrad(() => t.uniform_(-bound, bound));
}

/** PyTorch's default bias: uniform in +-1/sqrt(fan_in) of the layer's weight. */
export function defaultBias_(bias: Tensor, weight: Tensor): Tensor {
  const fanIn = fans(weight).fanIn;
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return noGrad(() => bias.uniform_(-bound, bound));
}

export const zeros_ = (t: Tensor): Tensor => noGrad(() => t.zero_());
export const ones_ = (t: Tensor): Tensor => noGrad(() => t.fill_(1));
export const normal_ = (t: Tensor, mean = 0, std = 1): Tensor => noGrad(() => t.normal_(mean, std));
