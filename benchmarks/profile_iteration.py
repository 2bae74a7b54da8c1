"""Where does one training iteration spend its time?  torch.profiler over a few iterations of the real fit step.

    .venv/bin/python -m benchmarks.profile_iteration --size 512 --mode bf16-cl
    python -m benchmarks.profile_iteration --device cuda --size 512 --mode fp32

The step is :meth:`dip.engine.fit.Fit.iterate` on a real :class:`dip.engine.fit.Fit` (:class:`benchmarks.worker.Worker`: a
synthetic 50%-masked grayscale image, no evaluation inside the profiled iterations) in one of bench_fit's modes
(:data:`benchmarks.modes.MODES`), run eagerly (no CUDA graph) so that the profile shows every kernel with its
launch.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

from benchmarks.modes import MODES, mode_of
from benchmarks.worker import Worker

EAGER_MODES = [name for name, m in MODES.items() if not m.graph]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="table1")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, help="torch threads (default: the CPU affinity)")
    ap.add_argument("--mode", default="fp32-cl", choices=EAGER_MODES, help="a mode of bench_fit (default fp32-cl)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed iterations first")
    ap.add_argument("--iters", type=int, default=10, help="timed iterations")
    ap.add_argument("--rows", type=int, default=25)
    a = ap.parse_args(argv)
    mode, env = mode_of(a.mode)
    os.environ.update(env)  # before the fit configures the runtime (fp32-stock: DIP_MALLOC_TUNE=0)
    from dip.core import compute

    device = compute.pick_device(a.device)
    with tempfile.TemporaryDirectory(prefix="profile_iteration-") as tmp:
        w = Worker(mode, device.type, a.threads or compute.default_threads(), a.preset, {}, Path(tmp))
        w.setup(a.size, warmup=a.warmup)
        t = sum(w.step()["s"] for _ in range(a.iters)) / a.iters
        print(f"{a.preset} {a.size}x{a.size} {device.type} {mode.name} ({mode.precision} {mode.memory_format}): "
              f"{t * 1000:.2f} ms/iteration")
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=acts) as prof:
            for _ in range(3):
                w.step()
        w.fit.close()
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=a.rows, max_name_column_width=60))


if __name__ == "__main__":
    main()
