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

        loaded = st.load(cmd["images"])[0]
        tuned = bool(cmd.get("tuned"))
        step = simclr_step.PretrainStep(
            loaded["images"],
            cmd["threads"],
            tuned=tuned,
            precision=cmd.get("precision", "bf16"),
            channels_last=cmd.get("channels_last", True),
            depth=cmd.get("depth", 18),
            size=cmd.get("size", 32),
        )
        step.fixed_views = loaded.get("views")
        state["pretrain"] = step
        out = {"ok": True, "macs_per_image": step.macs_per_image(), "params": step.params, "bf16": step.bf16, "channels_last": step.channels_last}
    elif cmd["op"] == "pretrain_run":
        out = {"seconds": state["pretrain"].run(cmd["steps"], cmd.get("part", "step"))}
    elif cmd["op"] == "infer_init":
        import os
        import sys as _sys

        _sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import inference

        keys = ("depth", "size", "batch", "threads", "precision", "channels_last", "mode")
        inf = state[cmd["name"]] = inference.Inference(*(cmd[k] for k in keys))
        inf.run(2)  # warm-up: caches, and a frozen model's first runs specialise it
        out = {"ok": True, "params": inf.params}
    elif cmd["op"] == "infer_run":
        out = {"seconds": state[cmd["name"]].run(cmd["steps"])}
    elif cmd["op"] == "tiny_add":
        out = {"seconds": tiny_add(cmd["calls"], cmd["threads"])}
    elif cmd["op"] == "info":
        import ctypes
        import os

        try:
            blas = ctypes.CDLL("libopenblas.so.0")  # the copy libtorch already loaded
            blas.openblas_get_corename.restype = ctypes.c_char_p
            core = blas.openblas_get_corename().decode()
        except (OSError, AttributeError):
            core = ""
        env = {k: os.environ.get(k, "") for k in ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "OPENBLAS_CORETYPE")}
        out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "openblas_core": core, "env": env}
    else:
        out = {"error": "unknown op"}
    print(json.dumps(out), flush=True)
