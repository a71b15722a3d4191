"""PyTorch peer for the parity recipe's supervised baseline (issue 5): ResNet-18 with the
CIFAR stem, width 0.25, one input channel, trained from scratch on a labeled subset of
Fashion-MNIST with crop + flip, SGD Nesterov, cosine decay by step, batch 256.

Written the way a PyTorch user would write it (torchvision transforms per image, a
DataLoader-style shuffle, torch.optim.SGD), so that our `simclr supervised` can be
compared with it on the same subset. Options switch single details, to find which of
them moves the accuracy.

Usage: python3 bench/py/supervised_baseline.py --labels-file RUN/labels-1pct.txt [--seed 0]
Prints one JSON line: {"top1": ..., "seconds": ...}.
"""
import argparse
import gzip
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as T
import torchvision.transforms.functional as TF

FASHION = "/usr/share/datasets/fashion-mnist"


def read_idx(name):
    with gzip.open(os.path.join(FASHION, name), "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.down(x) if self.down is not None else x))


class Classifier(nn.Module):
    def __init__(self, width=0.25, classes=10, head=True, init="torchvision", zero_fc=True):
        super().__init__()
        c = [int(64 * width * m) for m in (1, 2, 4, 8)]
        self.stem = nn.Sequential(nn.Conv2d(1, c[0], 3, 1, 1, bias=False), nn.BatchNorm2d(c[0]), nn.ReLU())
        layers, cin = [], c[0]
        for i, cout in enumerate(c):
            stride = 1 if i == 0 else 2
            layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(cin, cin, bias=False), nn.BatchNorm1d(cin), nn.ReLU()) if head else nn.Identity()
        self.fc = nn.Linear(cin, classes)
        if init == "torchvision":
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_fc:
            nn.init.zeros_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        x = self.layers(self.stem(x))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(self.head(x))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--labels-file", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=120)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--drop-last", choices=["yes", "no"], default="yes")
    p.add_argument("--head", choices=["yes", "no"], default="yes")
    p.add_argument("--init", choices=["torchvision", "default"], default="torchvision")
    p.add_argument("--zero-fc", choices=["yes", "no"], default="yes")
    p.add_argument("--crop-min", type=float, default=0.5)
    p.add_argument("--interpolation", choices=["bilinear", "bicubic"], default="bilinear")
    # continuous: crop boxes in fractions of the image, resampled with grid_sample (as ours)
    p.add_argument("--crops", choices=["torchvision", "continuous"], default="torchvision")
    p.add_argument("--channels-last", choices=["yes", "no"], default="no")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    train_x, train_y = read_idx("train-images-idx3-ubyte.gz"), read_idx("train-labels-idx1-ubyte.gz")
    test_x, test_y = read_idx("t10k-images-idx3-ubyte.gz"), read_idx("t10k-labels-idx1-ubyte.gz")
    mean, std = train_x.mean() / 255, train_x.std() / 255
    with open(a.labels_file) as f:
        ids = [int(line.split(":")[1]) for line in f if line.strip()]
    xs = torch.from_numpy(train_x[ids].astype(np.float32) / 255).unsqueeze(1)
    ys = torch.from_numpy(train_y[ids].astype(np.int64))

    mode = T.InterpolationMode.BILINEAR if a.interpolation == "bilinear" else T.InterpolationMode.BICUBIC
    crop = T.RandomResizedCrop(28, scale=(a.crop_min, 1.0), interpolation=mode)

    def view(img):
        img = crop(img)
        if torch.rand(1).item() < 0.5:
            img = TF.hflip(img)
        return img

    def continuous_views(batch):
        n = batch.shape[0]
        # up to 10 tries per image, the first that fits (else the whole image), as torchvision
        area = torch.empty(n, 10).uniform_(a.crop_min, 1.0)
        ratio = torch.empty(n, 10).uniform_(math.log(3 / 4), math.log(4 / 3)).exp()
        w, h = (area * ratio).sqrt(), (area / ratio).sqrt()
        fits = ((w <= 1) & (h <= 1)).float()
        first = fits.argmax(1, keepdim=True)
        anyfit = fits.amax(1) > 0
        w = torch.where(anyfit, w.gather(1, first).squeeze(1), torch.ones(n))
        h = torch.where(anyfit, h.gather(1, first).squeeze(1), torch.ones(n))
        x0, y0 = torch.rand(n) * (1 - w), torch.rand(n) * (1 - h)
        sign = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
        zero = torch.zeros(n)
        theta = torch.stack([w * sign, zero, 2 * x0 + w - 1, zero, h, 2 * y0 + h - 1], 1).view(n, 2, 3)
        grid = F.affine_grid(theta, [n, 1, 28, 28], align_corners=False)
        out = F.grid_sample(batch, grid, mode=a.interpolation, padding_mode="border", align_corners=False)
        return out.clamp(0, 1) if a.interpolation == "bicubic" else out

    model = Classifier(head=a.head == "yes", init=a.init, zero_fc=a.zero_fc == "yes")
    if a.channels_last == "yes":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, nesterov=True, weight_decay=a.wd)
    n = len(ids)
    per_epoch = n // a.batch if a.drop_last == "yes" else math.ceil(n / a.batch)
    total = per_epoch * a.epochs
    step = 0
    started = time.perf_counter()
    model.train()
    for epoch in range(a.epochs):
        order = rng.permutation(n)
        for b in range(per_epoch):
            idx = order[b * a.batch: (b + 1) * a.batch]
            x = continuous_views(xs[idx]) if a.crops == "continuous" else torch.stack([view(xs[i]) for i in idx])
            x = (x - mean) / std
            if a.channels_last == "yes":
                x = x.contiguous(memory_format=torch.channels_last)
            for g in opt.param_groups:
                g["lr"] = 0.5 * a.lr * (1 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(model(x), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    model.eval()
    hits = 0
    with torch.no_grad():
        tx = (torch.from_numpy(test_x.astype(np.float32) / 255).unsqueeze(1) - mean) / std
        ty = torch.from_numpy(test_y.astype(np.int64))
        for s in range(0, len(tx), 1000):
            hits += (model(tx[s: s + 1000]).argmax(1) == ty[s: s + 1000]).sum().item()
    print(json.dumps({"top1": 100 * hits / len(test_y), "seconds": round(time.perf_counter() - started, 1), "args": vars(a)}))


if __name__ == "__main__":
    main()
