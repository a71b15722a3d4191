"""PyTorch peer for the benchmarks: a long-lived process that answers commands on stdin
with one JSON line each, so it runs interleaved with ours on the same warm machine."""
import json
import sys
import time

import torch
import torch.nn as nn
import torchvision


def cifar_resnet18(classes, in_channels=3):
    m = torchvision.models.resnet18(num_classes=classes)
    m.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    return m


class TrainStep:
    def __init__(self, batch, size, threads, lr=0.1):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.model = cifar_resnet18(10)
        self.model.train()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        self.x = torch.randn(batch, 3, size, size)
        self.y = torch.randint(0, 10, (batch,))

    def run(self, steps):
        t0 = time.perf_counter()
        for _ in range(steps):
            self.opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(self.model(self.x), self.y)
            loss.backward()
            self.opt.step()
        return time.perf_counter() - t0


def tiny_add(calls, threads):
    torch.set_num_threads(threads)
    a = torch.ones(1)
    b = torch.ones(1)
    t0 = time.perf_counter()
    for _ in range(calls):
        c = a + b
    return time.perf_counter() - t0


state = {}
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "train_init":
        state["train"] = TrainStep(cmd["batch"], cmd["size"], cmd["threads"])
        out = {"ok": True}
    elif cmd["op"] == "train_run":
        out = {"seconds": state["train"].run(cmd["steps"])}
    elif cmd["op"] == "pretrain_init":
        import os
        import sys as _sys

        here = os.path.dirname(os.path.abspath(__file__))
        _sys.path.insert(0, here)
        _sys.path.insert(0, os.path.join(here, "..", "..", "test", "py"))
        import simclr_step
        import st

        images = st.load(cmd["images"])[0]["images"]
        state["pretrain"] = simclr_step.PretrainStep(images, cmd["threads"])
        state["pretrain_best"] = simclr_step.PretrainStep(images, cmd["threads"], best=True)
        out = {"ok": True}
    elif cmd["op"] == "pretrain_run":
        out = {"seconds": state["pretrain_best" if cmd.get("best") else "pretrain"].run(cmd["steps"])}
    elif cmd["op"] == "tiny_add":
        out = {"seconds": tiny_add(cmd["calls"], cmd["threads"])}
    elif cmd["op"] == "info":
        out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    else:
        out = {"error": "unknown op"}
    print(json.dumps(out), flush=True)
