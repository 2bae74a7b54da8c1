"""Where does one training iteration spend its time?  torch.profiler over a few iterations of the real fit step.

    .venv/bin/python benchmarks/profile_iteration.py --size 512 --precision bf16
    python benchmarks/profile_iteration.py --device cuda --size 512 --precision fp32 --memory-format contiguous

The step is :meth:`dip.fit.Fit.iterate` on a real :class:`dip.fit.Fit` (bench_fit's worker: a synthetic 50%-masked
grayscale image, no evaluation inside the profiled iterations), run eagerly (no CUDA graph) so that the profile
shows every kernel with its launch.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

from bench_fit import Mode, Worker  # also puts the checkout's src/ on the path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="table1")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, help="torch threads (default: the CPU affinity)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "tf32"])
    ap.add_argument("--memory-format", default="channels_last", choices=["channels_last", "contiguous"])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--rows", type=int, default=25)
    a = ap.parse_args()
    from dip import runtime

    device = runtime.pick_device(a.device)
    mode = Mode("profile", a.precision, a.memory_format)
    with tempfile.TemporaryDirectory(prefix="profile_iteration-") as tmp:
        w = Worker(mode, device.type, a.threads or runtime.default_threads(), a.preset, {}, Path(tmp))
        w.setup(a.size, warmup=5)
        t = sum(w.step()["s"] for _ in range(a.iters)) / a.iters
        print(f"{a.preset} {a.size}x{a.size} {device.type} {a.precision} {a.memory_format}: {t * 1000:.2f} ms/iteration")
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=acts) as prof:
            for _ in range(3):
                w.step()
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=a.rows, max_name_column_width=60))


if __name__ == "__main__":
    main()
