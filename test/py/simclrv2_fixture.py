"""A SimCLRv2 checkpoint as the PyTorch conversions lay it out ({'resnet': ..., 'head': ...},
the converter's module names), with random weights, and the official forward written here
from its description: ResNet-D stem, selective-kernel bottlenecks (one 3x3 conv making two
branches, mixed by a softmax attention from their pooled sum), average-pool projection
shortcuts (for the stride-1 one: 2x2, stride 1, padded at the end and not counted, as TF's
'SAME'), and the 3-layer head whose last batch norm has no beta (the file's zeros there are
set to 0.5 here: the forward must not use them). Saves the file, a batch of [0,1] images,
the encoder output h and the head output z.

    python3 simclrv2_fixture.py OUT_DIR [WIDTH] [SIZE]
"""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from weights_fixture import save_safetensors  # noqa: E402


def bn(c, relu=True, dims=2):
    return nn.Sequential((nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(c, eps=1e-5), nn.ReLU() if relu else nn.Identity())


class EndPad(nn.Module):
    """Pads the last row and column with copies of themselves: a 2x2 average then counts only real pixels."""

    def forward(self, x):
        return F.pad(x, (0, 1, 0, 1), mode="replicate")


class SK(nn.Module):
    def __init__(self, cin, c, stride, ratio=0.0625, min_dim=32):
        super().__init__()
        d = max(int(c * ratio), min_dim)
        self.main_conv = nn.Sequential(nn.Conv2d(cin, 2 * c, 3, stride, 1, bias=False), bn(2 * c))
        self.mixing_conv = nn.Sequential(nn.Conv2d(c, d, 1, bias=False), bn(d), nn.Conv2d(d, 2 * c, 1, bias=False))

    def forward(self, x):
        b = torch.stack(torch.chunk(self.main_conv(x), 2, dim=1), dim=0)
        a = self.mixing_conv(b.sum(0).mean(dim=[2, 3], keepdim=True))
        a = torch.stack(torch.chunk(a, 2, dim=1), dim=0).softmax(dim=0)
        return (b * a).sum(0)


class Projection(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        pool = nn.AvgPool2d(2, stride)
        pad = EndPad() if stride == 1 else nn.ZeroPad2d((0, 1, 0, 1))
        self.shortcut = nn.Sequential(pad, pool, nn.Conv2d(cin, cout, 1, bias=False))
        self.bn = bn(cout, relu=False)

    def forward(self, x):
        return self.bn(self.shortcut(x))


class Block(nn.Module):
    def __init__(self, cin, m, stride, first):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(cin, m, 1, bias=False), bn(m), SK(m, m, stride), nn.Conv2d(m, 4 * m, 1, bias=False), bn(4 * m, relu=False))
        self.projection = Projection(cin, 4 * m, stride) if first else nn.Identity()

    def forward(self, x):
        return F.relu(self.net(x) + self.projection(x))


class Stage(nn.Module):
    def __init__(self, cin, m, n, stride):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(cin if i == 0 else 4 * m, m, stride if i == 0 else 1, i == 0) for i in range(n)])

    def forward(self, x):
        return self.blocks(x)


class ResNet(nn.Module):
    def __init__(self, width, layers=(3, 4, 6, 3)):
        super().__init__()
        c = 64 * width // 2
        stem = nn.Sequential(nn.Conv2d(3, c, 3, 2, 1, bias=False), bn(c), nn.Conv2d(c, c, 3, 1, 1, bias=False), bn(c), nn.Conv2d(c, 2 * c, 3, 1, 1, bias=False), bn(2 * c), nn.MaxPool2d(3, 2, 1))
        stages, cin = [], 2 * c
        for i, n in enumerate(layers):
            m = 64 * width * 2**i
            stages.append(Stage(cin, m, n, 1 if i == 0 else 2))
            cin = 4 * m
        self.net = nn.Sequential(stem, *stages)

    def forward(self, x):
        return self.net(x).mean(dim=[2, 3])


class Head(nn.Module):
    def __init__(self, c, out=128):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(c, c, bias=False), nn.BatchNorm1d(c), nn.ReLU(), nn.Linear(c, c, bias=False), nn.BatchNorm1d(c), nn.ReLU(), nn.Linear(c, out, bias=False), nn.BatchNorm1d(out)])

    def forward(self, h):
        for i, layer in enumerate(self.layers):
            if i == 7:  # TF's center=False: no beta
                h = F.batch_norm(h, layer.running_mean, layer.running_var, layer.weight, None, False, 0.0, layer.eps)
            else:
                h = layer(h)
        return h


def randomise(model):
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm1d)):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.8, 1.2)
                mod.weight.uniform_(0.8, 1.2)
                mod.bias.uniform_(-0.1, 0.1)


def main():
    out = sys.argv[1]
    width = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    torch.manual_seed(0)
    resnet, head = ResNet(width), Head(2048 * width)
    randomise(resnet)
    randomise(head)
    resnet.eval()
    head.eval()
    with torch.no_grad():
        head.layers[7].bias.fill_(0.5)
    torch.save({"resnet": resnet.state_dict(), "head": head.state_dict()}, f"{out}/r50_{width}x_sk1.pth")
    images = torch.rand(2, 3, size, size)
    with torch.no_grad():
        h = resnet(images)
        z = head(h)
    save_safetensors(f"{out}/r50_{width}x_sk1-expected.safetensors", {"images": images, "h": h, "z": z})


if __name__ == "__main__":
    main()
