"""PyTorch's peer of `npm run bench:scale` (bench/scale.ts): SimCLR pretraining throughput, float32,
global batch 128 (2 views -> 256 rows) of random 1x28x28 inputs, view generation excluded, on
  a        1 process x 2 threads, plain batch norm;
  syncbn   2 processes x 1 thread (Gloo over 127.0.0.1), 64 images each, synchronized batch norm
           in encoder and head, DistributedDataParallel, NT-Xent over all-gathered projections;
  localbn  the same with each process's own batch norm, to separate synchronized batch norm's cost.
Model: ResNet-18, CIFAR stem, width 0.25 (16/32/64/128 channels), 1 input channel; the 3-layer
head of simclr_step.py (128-128-128); NT-Xent at temperature 0.5; simclr_step.py's LARS.
nn.SyncBatchNorm of torch 1.13 is CUDA-only (its statistics kernels exist only there), so
synchronized batch norm is the function below, built as PyTorch's is: one collective forward,
one backward, per layer, around libtorch's own batch norm kernels.

  /usr/bin/python3 bench/py/ddp_scale.py [--rounds 3] [--steps 10] [--warmup 2] [--no-wait]"""
import argparse, os, socket, statistics, subprocess, sys, time

import torch
import torch.distributed as dist
import torch.distributed.nn as dnn
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock

sys.dont_write_bytecode = True  # no __pycache__ left in bench/py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from simclr_step import LARS, head, nt_xent  # noqa: E402

BATCH, TEMPERATURE = 128, 0.5


def resnet18(width=0.25, in_channels=1):
    """simclr_step.cifar_resnet18 is full width with 3 input channels; this is the same layout
    with simclr-ts's width multiplier (channels round(64 * width * 2^i))."""
    chans = [round(64 * width * 2**i) for i in range(4)]
    layers, prev = [nn.Conv2d(in_channels, chans[0], 3, 1, 1, bias=False), nn.BatchNorm2d(chans[0]), nn.ReLU(inplace=True)], chans[0]
    for i, c in enumerate(chans):
        for j in range(2):
            stride = 2 if i > 0 and j == 0 else 1
            down = nn.Sequential(nn.Conv2d(prev, c, 1, stride, bias=False), nn.BatchNorm2d(c)) if stride != 1 or prev != c else None
            layers.append(BasicBlock(prev, c, stride, down))
            prev = c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten()), prev


class SyncBNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, eps, momentum):
        # Plain sums: torch.var_mean over (N, H, W) is several times slower here on 1 thread.
        c, dims = x.shape[1], [0] + list(range(2, x.dim()))
        sums = torch.cat([x.sum(dims), (x * x).sum(dims), x.new_tensor([x.numel() // c])])
        dist.all_reduce(sums)  # sums of x and x^2 over all processes, and the count
        n = sums[-1]
        mean = sums[:c] / n
        var = (sums[c:2 * c] / n - mean * mean).clamp_(min=0)
        running_mean.mul_(1 - momentum).add_(mean * momentum)
        running_var.mul_(1 - momentum).add_(var * (n / (n - 1) * momentum))
        invstd = torch.rsqrt(var + eps)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.n = n
        return torch.batch_norm(x, weight, bias, mean, var, False, 0.0, eps, False)

    @staticmethod
    def backward(ctx, dy):
        x, w, mean, invstd = ctx.saved_tensors
        c, n_local = x.shape[1], x.numel() // x.shape[1]
        # Training-mode backward with the global statistics: the input gradient as if the local
        # sums of dy and dy * xhat were the global ones, and those local sums (gb, gw).
        gi, gw, gb = torch.ops.aten.native_batch_norm_backward(dy.contiguous(), x, w, None, None, mean, invstd, True, 0.0, [True, True, True])
        sums = torch.cat([gb, gw])
        dist.all_reduce(sums)  # global sum(dy), sum(dy * xhat)
        # The correction to the global sums is per channel A + B * x: one pass over x.
        b = w * invstd * invstd * (gw / n_local - sums[c:] / ctx.n)
        a = w * invstd * (gb / n_local - sums[:c] / ctx.n) - b * mean
        shape = [1, c] + [1] * (x.dim() - 2)
        gi = gi.add_(a.view(shape)).addcmul_(x, b.view(shape))
        return gi, (gw if ctx.needs_input_grad[1] else None), (gb if ctx.needs_input_grad[2] else None), None, None, None, None


class SyncBN(nn.modules.batchnorm._BatchNorm):
    _check_input_dim = lambda self, x: None

    def forward(self, x):
        w = self.weight if self.weight is not None else torch.ones(x.shape[1])
        return SyncBNFunction.apply(x, w, self.bias, self.running_mean, self.running_var, self.eps, self.momentum)


def nt_xent_gathered(z, rank):
    """simclr-ts's: this process's rows against every process's (normalised, then gathered)."""
    h1, h2 = F.normalize(z[: len(z) // 2], dim=1), F.normalize(z[len(z) // 2:], dim=1)
    g1, g2 = torch.cat(dnn.all_gather(h1)), torch.cat(dnn.all_gather(h2))
    labels = torch.arange(rank * len(h1), (rank + 1) * len(h1))
    own = F.one_hot(labels, len(g1)).bool()
    rows = lambda h, sib, same: torch.cat([h @ sib.T, (h @ same.T).masked_fill(own, -1e9)], 1) / TEMPERATURE
    return F.cross_entropy(rows(h1, g2, g1), labels) + F.cross_entropy(rows(h2, g1, g2), labels)


def worker(rank, world, config, port, steps, warmup, out):
    torch.set_num_threads(2 if world == 1 else 1)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)
    encoder, dim = resnet18()
    model = nn.Sequential(encoder, head(dim))
    if config == "syncbn":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.__class__ = SyncBN
    opt = LARS(model.parameters(), lr=BATCH / 256)
    if world > 1:  # buffers: equal under synchronized batch norm, and not broadcast by simclr-ts
        model = nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
    torch.manual_seed(1 + rank)
    x = torch.rand(2 * BATCH // world, 1, 28, 28)  # both views' rows, fixed (views excluded)
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        z = model(x)
        loss = nt_xent(z[:BATCH], z[BATCH:], TEMPERATURE) if world == 1 else nt_xent_gathered(z, rank)
        opt.zero_grad(), loss.backward(), opt.step()
        if not torch.isfinite(loss):
            raise RuntimeError(f"{config} rank {rank}: loss {loss.item()} at step {i}")
    if rank == 0:
        out.put(BATCH * steps / (time.perf_counter() - t0))
    if world > 1:
        dist.destroy_process_group()


def run(config, steps, warmup):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ["OMP_NUM_THREADS"] = "2" if config == "a" else "1"  # as bench/scale.ts starts them
    out = mp.get_context("spawn").SimpleQueue()
    mp.spawn(worker, (1 if config == "a" else 2, config, port, steps, warmup, out), nprocs=1 if config == "a" else 2)
    return out.get()


def running(pid):
    """False for a stopped (SIGSTOP) or finished process: it takes no processor time."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] not in "TtZX"
    except OSError:
        return False


def wait_quiet(limit_s=1200, every_s=20):
    pattern = r"dist/bench/scale\.js|main\.js pretrain"
    t0 = time.time()
    while True:
        busy = [pid for pid in subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split() if running(pid)]
        if not busy or time.time() - t0 >= limit_s:
            print(f"waited_s={time.time() - t0:.0f}" + (f" still_running_pids={','.join(busy)}" if busy else ""))
            return
        time.sleep(every_s)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    for name, default in (("--rounds", 3), ("--steps", 10), ("--warmup", 2)):
        p.add_argument(name, type=int, default=default)
    p.add_argument("--no-wait", action="store_true", help="measure now, busy or not")
    args = p.parse_args()
    if not args.no_wait:
        wait_quiet()
    # The allocator setting simclr-ts's addon applies (bench/same-env.ts); the workers inherit it.
    os.environ.update(MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_="2147483647")
    print(f"loadavg_start={' '.join(open('/proc/loadavg').read().split()[:3])} torch={torch.__version__} optimizer=LARS float32 views=excluded")
    configs, got = ["a", "syncbn", "localbn"], {"a": [], "syncbn": [], "localbn": []}
    for r in range(args.rounds):
        for c in configs[r % 3:] + configs[: r % 3]:  # order rotated each round
            got[c].append(run(c, args.steps, args.warmup))
    names = {"a": "torch_1proc_2threads_img_s", "syncbn": "torch_2proc_syncbn_img_s", "localbn": "torch_2proc_localbn_img_s"}
    med = {c: statistics.median(v) for c, v in got.items()}
    for c in configs:
        print(f"{names[c]}={med[c]:.1f} (min-max {min(got[c]):.1f}-{max(got[c]):.1f} of {len(got[c])} rounds: {' '.join(f'{v:.1f}' for v in got[c])})")
    print(f"torch_scale_efficiency_2proc_syncbn={med['syncbn'] / med['a']:.3f}")
    print(f"torch_scale_efficiency_2proc_localbn={med['localbn'] / med['a']:.3f}")
    print(f"loadavg_end={' '.join(open('/proc/loadavg').read().split()[:3])}")
