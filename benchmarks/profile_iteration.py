"""Where does one training iteration spend its time?  torch.profiler over a few iterations of the real fit step.

    python benchmarks/profile_iteration.py --device cuda --size 512 --precision fp32 --memory-format channels_last
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from dip.model import SkipConfig, SkipNet
from dip.presets import resolve
from dip.runtime import autocast, configure, pick_device, synchronize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="table1")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--memory-format", default="channels_last", choices=["channels_last", "contiguous"])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--rows", type=int, default=25)
    a = ap.parse_args()
    dev = pick_device(a.device)
    configure(dev, None, a.precision, False)
    p = resolve(a.preset)
    net = SkipNet(SkipConfig(p["input_depth"], a.channels, p["n_down"], p["n_up"], p["n_skip"], p["k_down"],
                             p["k_up"], p["k_skip"], p["upsample"])).to(dev)
    z = torch.rand(1, p["input_depth"], a.size, a.size, device=dev) * 0.1
    target = torch.rand(1, a.channels, a.size, a.size, device=dev)
    mask = (torch.rand(1, 1, a.size, a.size, device=dev) > 0.5).float()
    if a.memory_format == "channels_last":
        net, z = net.to(memory_format=torch.channels_last), z.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast(dev, a.precision):
            out = net(z + torch.randn_like(z) * 0.03)
        loss = ((out.float() - target) * mask).pow(2).sum() / target.numel()
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    synchronize(dev)
    t0 = time.perf_counter()
    for _ in range(a.iters):
        step()
    synchronize(dev)
    print(f"{a.preset} {a.size}x{a.size} {dev.type} {a.precision} {a.memory_format}: "
          f"{(time.perf_counter() - t0) / a.iters * 1000:.2f} ms/iteration")
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(3):
            step()
        synchronize(dev)
    key = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=a.rows, max_name_column_width=60))


if __name__ == "__main__":
    main()
