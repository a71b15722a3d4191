"""The SimCLR pretraining step in PyTorch, written to match simclr-ts's: batched views
(random resized crop + flip through affine_grid/grid_sample, colour jitter in a random
order per image, each op run only on the images that draw it, grayscale), ResNet-18
(CIFAR stem) + 3-layer projection head (the last norm without shift), NT-Xent, LARS with
batch norm and biases excluded."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


def cifar_resnet18():
    m = torchvision.models.resnet18()
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    m.fc = nn.Identity()
    return m


def encoder_for(depth, size):
    """ResNet-18 with the CIFAR stem at 32 pixels or less (as simclr-ts picks it), else torchvision's."""
    if depth == 18 and size <= 32:
        return cifar_resnet18()
    m = getattr(torchvision.models, f"resnet{depth}")()
    m.fc = nn.Identity()
    return m


def head(dim, out=128):
    layers = []
    for i in range(3):
        last = i == 2
        bn = nn.BatchNorm1d(out if last else dim)
        if last:
            # Scale only, as simclr-ts's (and the official code's) last head layer.
            del bn.bias
            bn.register_parameter("bias", None)
        layers += [nn.Linear(dim, out if last else dim, bias=False), bn]
        if not last:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def sample_crops(n, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), tries=10):
    area = torch.rand(n, tries) * (scale[1] - scale[0]) + scale[0]
    r = torch.exp(torch.rand(n, tries) * (math.log(ratio[1]) - math.log(ratio[0])) + math.log(ratio[0]))
    w, h = torch.sqrt(area * r), torch.sqrt(area / r)
    fits = ((w <= 1) & (h <= 1)).float()
    first = fits.argmax(1, keepdim=True)
    anyfit = fits.amax(1) > 0.5
    cw = torch.where(anyfit, w.gather(1, first).squeeze(1), torch.ones(n))
    ch = torch.where(anyfit, h.gather(1, first).squeeze(1), torch.ones(n))
    return torch.rand(n) * (1 - cw), torch.rand(n) * (1 - ch), cw, ch


def gray(x):
    return (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)


def blend(a, b, r):
    r = r.view(-1, 1, 1, 1)
    return (a * r + b * (1 - r)).clamp(0, 1)


def shift_hue(x, shift):
    r, g, b = x.chunk(3, 1)
    maxc, minc = x.amax(1, keepdim=True), x.amin(1, keepdim=True)
    flat = maxc == minc
    rng = maxc - minc
    one = torch.ones_like(maxc)
    s = rng / torch.where(flat, one, maxc)
    d = torch.where(flat, one, rng)
    rc, gc, bc = (maxc - r) / d, (maxc - g) / d, (maxc - b) / d
    is_r = maxc == r
    is_g = (maxc == g) & ~is_r
    is_b = ~is_r & ~is_g
    h = ((bc - gc) * is_r + (2 + rc - bc) * is_g + (4 + gc - rc) * is_b) / 6
    h = torch.remainder(h + 1 + shift.view(-1, 1, 1, 1), 1)
    h6 = h * 6
    sector = torch.floor(h6)
    f = h6 - sector
    i = torch.remainder(sector, 6)
    v = maxc
    p, q, u = (v * (1 - s)).clamp(0, 1), (v * (1 - s * f)).clamp(0, 1), (v * (1 - s * (1 - f))).clamp(0, 1)
    table = [(v, u, p), (q, v, p), (p, v, u), (p, q, v), (u, p, v), (v, p, q)]
    chans = []
    for c in range(3):
        out = table[5][c]
        for k in range(4, -1, -1):
            out = torch.where(i == k, table[k][c], out)
        chans.append(out)
    return torch.cat(chans, 1)


def blur_subset(x, on, sigma):
    """Gaussian blur (kernel side = image side / 10, odd; zero padding) with each image's own
    sigma, run only on the images that draw it (simclr-ts's kernel, on every image with an
    identity kernel where it draws none, is more work)."""
    n, c, h, w = x.shape
    radius = (h // 10) // 2
    ids = on.nonzero().squeeze(1)
    if radius < 1 or ids.numel() == 0:
        return x
    k = 2 * radius + 1
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype).view(1, k)
    kern = torch.exp(-offsets**2 / (2 * sigma[ids].view(-1, 1) ** 2))
    kern = (kern / kern.sum(1, keepdim=True)).unsqueeze(1).expand(-1, c, k).reshape(-1, 1, k)
    flat = x.index_select(0, ids).reshape(1, -1, h, w)
    groups = flat.shape[1]
    out = F.conv2d(flat, kern.unsqueeze(3), padding=(radius, 0), groups=groups)
    out = F.conv2d(out, kern.unsqueeze(2), padding=(0, radius), groups=groups)
    x = x.clone()
    x[ids] = out.reshape(-1, c, h, w)
    return x


def view(x, size, strength=0.5, subset=True, blur=False):
    n = x.shape[0]
    x0, y0, w, h = sample_crops(n)
    flip = torch.rand(n) < 0.5
    sx = w * torch.where(flip, -torch.ones(n), torch.ones(n))
    zero = torch.zeros(n)
    theta = torch.stack([sx, zero, 2 * x0 + w - 1, zero, h, 2 * y0 + h - 1], 1).view(n, 2, 3)
    grid = F.affine_grid(theta, [n, 3, size, size], align_corners=False)
    out = F.grid_sample(x, grid, mode="bicubic", padding_mode="border", align_corners=False).clamp(0, 1)
    jitter = torch.rand(n) < 0.8
    lo, hi = max(0, 1 - 0.8 * strength), 1 + 0.8 * strength
    drawn = torch.stack([torch.rand(n) * (hi - lo) + lo for _ in range(3)] + [torch.rand(n) * 0.4 * strength - 0.2 * strength], 1)
    colour = torch.where(jitter.unsqueeze(1), drawn, torch.tensor([[1.0, 1.0, 1.0, 0.0]]))
    order = torch.rand(n, 4).sort(1).indices
    out = jitter_by_subset(out, colour, order) if subset else jitter_masked(out, colour, order)
    g = torch.rand(n) < 0.2
    out = torch.where(g.view(-1, 1, 1, 1), gray(out).expand_as(out), out)
    if blur:
        out = blur_subset(out, torch.rand(n) < 0.5, torch.rand(n) * 1.9 + 0.1)
    return out


JITTER_OPS = [
    lambda x, v: blend(x, torch.zeros_like(x), v),
    lambda x, v: blend(x, gray(x).mean([1, 2, 3], keepdim=True), v),
    lambda x, v: blend(x, gray(x), v),
    shift_hue,
]
IDENTITY = torch.tensor([1.0, 1.0, 1.0, 0.0])


def jitter_by_subset(x, colour, order):
    """At each of the four positions, each op runs on the images that draw it there (and
    jitter at all): what a careful PyTorch user writes, and what simclr-ts does on CPU."""
    n = x.shape[0]
    out = x
    for pos in range(4):
        pieces, source, offset = [out], torch.arange(n), n
        for k, op in enumerate(JITTER_OPS):
            ids = ((order[:, pos] == k) & (colour[:, k] != IDENTITY[k])).nonzero().squeeze(1)
            if ids.numel() == 0:
                continue
            pieces.append(op(out.index_select(0, ids), colour[:, k].index_select(0, ids)))
            source[ids] = offset + torch.arange(ids.numel())
            offset += ids.numel()
        if len(pieces) > 1:
            out = torch.cat(pieces).index_select(0, source)
    return out


def jitter_masked(out, colour, order):
    """Every op on every image at every position, identity values where an image skips it
    (about 3x the work of jitter_by_subset; kept to check that both agree)."""
    b, c, s, hue = colour.unbind(1)
    for pos in range(4):
        at = order[:, pos]
        pick = lambda k, v, ident: torch.where(at == k, v, torch.full_like(v, ident))
        out = blend(out, torch.zeros_like(out), pick(0, b, 1))
        out = blend(out, gray(out).mean([1, 2, 3], keepdim=True), pick(1, c, 1))
        out = blend(out, gray(out), pick(2, s, 1))
        here = (at == 3) & (hue != 0)
        out = torch.where(here.view(-1, 1, 1, 1), shift_hue(out, hue), out)
    return out


def nt_xent(z1, z2, temperature):
    h1, h2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    n = h1.shape[0]
    labels = torch.arange(n)
    mask = torch.eye(n, dtype=torch.bool)
    aa = (h1 @ h1.T / temperature).masked_fill(mask, -1e9)
    bb = (h2 @ h2.T / temperature).masked_fill(mask, -1e9)
    ab, ba = h1 @ h2.T / temperature, h2 @ h1.T / temperature
    return F.cross_entropy(torch.cat([ab, aa], 1), labels) + F.cross_entropy(torch.cat([ba, bb], 1), labels)


class LARS:
    def __init__(self, params, lr, momentum=0.9, wd=1e-4, eta=0.001):
        self.params = list(params)
        self.lr, self.momentum, self.wd, self.eta = lr, momentum, wd, eta
        self.bufs = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        for p, buf in zip(self.params, self.bufs):
            if p.grad is None:
                continue
            g = p.grad
            if p.dim() > 1:
                g = g + self.wd * p
                wn, gn = p.norm(), g.norm()
                ok = (wn > 0) & (gn > 0)
                trust = torch.where(ok, self.eta * wn / torch.where(ok, gn, torch.ones_like(gn)), torch.ones_like(wn))
                step = g * (trust * self.lr)
            else:
                step = g * self.lr
            buf.mul_(self.momentum).add_(step)
            p.sub_(buf)

    def zero_grad(self):
        for p in self.params:
            p.grad = None


def count_macs(modules, x):
    """Multiply-adds per image of the convolutions and linear layers in one forward of x,
    from the output shapes the layers produce (hooks; no constants)."""
    total = [0]

    def hook(m, inputs, out):
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            total[0] += out.numel() * k
        else:
            total[0] += out.numel() * m.in_features

    layers = [m for mod in modules for m in mod.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        with torch.no_grad():
            out = x
            for mod in modules:
                out = mod(out)
    finally:
        for h in handles:
            h.remove()
    return total[0] / x.shape[0]


class PretrainStep:
    """tuned=False: PyTorch's defaults (float32, NCHW). tuned=True: what a careful user runs
    on this processor: channels-last model and input, bfloat16 autocast for the forward
    passes where the processor has bf16 (precision), the loss in float32. The process's
    environment (allocator, OpenBLAS kernels) is set by whoever starts it."""

    def __init__(self, images, threads, tuned=False, precision="bf16", channels_last=True, depth=18, size=32):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.size = size
        self.encoder = encoder_for(depth, size)
        self.head = head(512 if depth < 50 else 2048)
        self.channels_last = tuned and channels_last
        self.bf16 = tuned and precision == "bf16"
        if self.channels_last:
            self.encoder = self.encoder.to(memory_format=torch.channels_last)
        params = list(self.encoder.parameters()) + list(self.head.parameters())
        self.opt = LARS(params, lr=1.0 * images.shape[0] / 256)
        self.params = sum(p.numel() for p in params)
        self.images = images
        self.fixed_views = None

    def macs_per_image(self):
        x = torch.rand(2, 3, self.size, self.size)
        self.encoder.eval(), self.head.eval()
        try:
            return count_macs([self.encoder, self.head], x)
        finally:
            self.encoder.train(), self.head.train()

    def views(self):
        x = self.images.float() / 255
        # As simclr-ts's views: above 32 pixels, colour strength 1 and blur (simclrViewOptions).
        small = self.size <= 32
        strength = 0.5 if small else 1.0
        return torch.cat([view(x, self.size, strength, blur=not small), view(x, self.size, strength, blur=not small)])

    # CIFAR-10's channel statistics, as bench/pretrain-step.ts normalises with (CIFAR_NORM).
    MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).reshape(1, 3, 1, 1)
    STD = torch.tensor([0.247, 0.2435, 0.2616]).reshape(1, 3, 1, 1)

    def model_step(self, v):
        v = (v - self.MEAN) / self.STD
        if self.channels_last:
            v = v.contiguous(memory_format=torch.channels_last)
        if self.bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                z = self.head(self.encoder(v))
            z = z.float()
        else:
            z = self.head(self.encoder(v))
        z1, z2 = z.chunk(2)
        loss = nt_xent(z1, z2, 0.5)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def run(self, steps, part="step"):
        """Seconds for `steps` of: the whole step ("step"), the views alone ("views"), or
        the model's part on the fixed views ("model": encoder, head, loss, optimiser)."""
        import time

        t0 = time.perf_counter()
        for _ in range(steps):
            if part == "views":
                self.views()
            elif part == "model":
                self.model_step(self.fixed_views)
            else:
                self.model_step(self.views())
        return time.perf_counter() - t0
