"""One rank of the collective-latency peer: Debian's PyTorch all-reducing 64 floats over Gloo,
1,000 times after 50 of warm-up; rank 0 prints the mean time of one. Started by
bench/collective-latency.ts as: gloo_latency.py RANK PORT."""
import sys
import time

import torch
import torch.distributed as dist

torch.set_num_threads(1)
rank = int(sys.argv[1])
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{sys.argv[2]}", rank=rank, world_size=2)
x = torch.zeros(64)  # sums of ones would double each time and overflow to inf
for _ in range(50):
    dist.all_reduce(x)
n = 1000
start = time.perf_counter()
for _ in range(n):
    dist.all_reduce(x)
if rank == 0:
    print(f"{(time.perf_counter() - start) / n * 1e6:.1f}")
dist.destroy_process_group()
