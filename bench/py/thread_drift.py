"""Does PyTorch itself drift between 1 and 2 threads under the issue's recipe? Two copies of
one model (ResNet-18 at width 0.25, CIFAR stem, one input channel, 3-layer head, NT-Xent at
T 0.5, LARS lr 0.5 with cosine decay over the steps and no warm-up, batch 128 of
Fashion-MNIST) step in lockstep in one process on the same views, one with 1 thread and one
with 2; after each step: the relative loss difference and the relative weight difference.
The same in float64 tells rounding (which float64 shrinks by ~1e9) from any other cause.

  /usr/bin/python3 bench/py/thread_drift.py [--steps 16] [--dtype float32|float64|both]
"""
import argparse
import copy
import gzip
import math
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(__file__))
from simclr_step import LARS, head, nt_xent, view  # noqa: E402
from supervised_baseline import Block  # noqa: E402  (the same basic block as the baseline peer)


def fashion_mnist(n):
    path = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as f:
        data = f.read()
    x = torch.frombuffer(bytearray(data[16 : 16 + n * 784]), dtype=torch.uint8)
    return x.view(n, 1, 28, 28).float() / 255


class ResNet18(nn.Module):
    """ResNet-18 with a width multiplier and the CIFAR stem (3x3 conv, no max-pool)."""

    def __init__(self, width=0.25, cin=1):
        super().__init__()
        w = [round(c * width) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(nn.Conv2d(cin, w[0], 3, 1, 1, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU())
        layers, prev = [], w[0]
        for i, c in enumerate(w):
            layers += [Block(prev, c, 1 if i == 0 else 2), Block(c, c, 1)]
            prev = c
        self.layers = nn.Sequential(*layers)
        self.out_dim = prev

    def forward(self, x):
        return self.layers(self.stem(x)).mean([2, 3])


def gray_views(x, seed):
    """Crop + flip + jitter + grayscale views of 1-channel images (through 3 channels)."""
    g = torch.random.get_rng_state()
    torch.manual_seed(seed)
    x3 = x.expand(-1, 3, -1, -1)
    v = torch.cat([view(x3, 28), view(x3, 28)]).mean(1, keepdim=True)
    torch.random.set_rng_state(g)
    return (v - 0.286) / 0.353


def run(dtype, steps, batch=128, lr_peak=0.5):
    torch.manual_seed(0)
    encoder, proj = ResNet18(), None
    proj = head(encoder.out_dim)
    a = nn.Sequential(encoder, proj).to(dtype)
    b = copy.deepcopy(a)
    opt_a, opt_b = LARS(a.parameters(), lr=lr_peak), LARS(b.parameters(), lr=lr_peak)
    images = fashion_mnist(batch * steps)
    print(f"{dtype}: step, loss (1 thread), relative loss difference 2 vs 1 thread, relative weight difference ||w2-w1||/||w1||")
    rows = []
    for step in range(steps):
        lr = 0.5 * lr_peak * (1 + math.cos(math.pi * step / steps))
        v = gray_views(images[step * batch : (step + 1) * batch], seed=step).to(dtype)
        losses = []
        for model, opt, threads in ((a, opt_a, 1), (b, opt_b, 2)):
            torch.set_num_threads(threads)
            z = model(v)
            z1, z2 = z.chunk(2)
            loss = nt_xent(z1, z2, 0.5)
            opt.zero_grad()
            loss.backward()
            opt.lr = lr
            opt.step()
            losses.append(loss.item())
        with torch.no_grad():
            wa = torch.cat([p.reshape(-1) for p in a.parameters()])
            wb = torch.cat([p.reshape(-1) for p in b.parameters()])
            dw = ((wa - wb).norm() / wa.norm()).item()
        dl = abs(losses[1] - losses[0]) / abs(losses[0])
        rows.append((dl, dw))
        print(f"  {step + 1:2d} {losses[0]:.6f} {dl:.2e} {dw:.2e}")
    worst = max(r[0] for r in rows)
    growth = (rows[-1][1] / rows[0][1]) ** (1 / max(1, steps - 1)) if rows[0][1] > 0 else float("nan")
    tag = "fp64" if dtype == torch.float64 else "fp32"
    print(f"pytorch_thread_drift_max_loss_{tag}={worst:.3e}")
    print(f"pytorch_thread_drift_weight_growth_per_step_{tag}={growth:.2f}  (weight difference after step 1: {rows[0][1]:.2e}, after step {steps}: {rows[-1][1]:.2e})")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--dtype", default="both", choices=["float32", "float64", "both"])
    o = p.parse_args()
    print(f"torch {torch.__version__}")
    for d in (["float32", "float64"] if o.dtype == "both" else [o.dtype]):
        run(getattr(torch, d), o.steps)


if __name__ == "__main__":
    main()
