"""The encoder's inference forward in PyTorch, for bench/inference.ts: torchvision's ResNet
(the CIFAR stem for 32-pixel images), pooled features out, in one of two forms a careful
user runs:
  eager: eval mode, torch.inference_mode, channels-last where asked, bfloat16 autocast
         where asked;
  frozen: torch.jit.freeze + optimize_for_inference (batch norm folded, oneDNN layouts and
          fused ReLUs). Its oneDNN path is float32; for bfloat16 the model is converted
          with .bfloat16() before freezing (autocast does not survive scripting in 1.13)."""
import time

import torch
import torch.nn as nn
import torchvision


def encoder(depth, size):
    m = getattr(torchvision.models, f"resnet{depth}")()
    if size <= 32:
        m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        m.maxpool = nn.Identity()
    m.fc = nn.Identity()
    return m.eval()


class Inference:
    def __init__(self, depth, size, batch, threads, precision, channels_last, mode):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.bf16 = precision == "bf16"
        self.channels_last = channels_last and mode == "eager"
        self.mode = mode
        model = encoder(depth, size)
        self.params = sum(p.numel() for p in model.parameters())
        self.x = torch.randn(batch, 3, size, size)
        with torch.inference_mode():
            if mode == "frozen":
                if self.bf16:
                    model = model.bfloat16()
                self.model = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(model)))
            else:
                self.model = model.to(memory_format=torch.channels_last) if self.channels_last else model

    def forward(self):
        x = self.x
        if self.mode == "frozen":
            return self.model(x.bfloat16() if self.bf16 else x).float()
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.model(x).float()
        return self.model(x)

    def run(self, steps):
        t0 = time.perf_counter()
        with torch.inference_mode():
            for _ in range(steps):
                self.forward()
        return time.perf_counter() - t0
