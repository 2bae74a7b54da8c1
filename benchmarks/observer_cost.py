"""What output averaging and the stopping rule cost a fit: time per iteration and memory, from one run.

    .venv/bin/python -m benchmarks.observer_cost                          # 512x512 table1 network, CPU
    python -m benchmarks.observer_cost --device cuda --mode fp32-graph    # on a GPU, the CUDA graph path

A real :class:`dip.engine.fit.Fit` of the paper's Table 1 network at 512x512 (barbara, 50% mask) runs ``--iterations``
timed iterations through :meth:`Fit.iterate` (evaluation kept out), with every observer's ``observe`` call timed
inside the same iterations (device synchronised around it), so the ratio observer time / iteration time comes
from one run and is not disturbed by other load on the machine. Memory: the bytes the observers hold (their
state tensors) against the process's peak resident memory (CPU) or the device's peak allocation (CUDA).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import make_mask, table1_image
from benchmarks.modes import FIT_MODES, MODES
from benchmarks.worker import NEVER


class Timed:
    """An observer wrapper that adds the seconds of each ``observe`` call to ``seconds``."""

    def __init__(self, inner, device: torch.device, seconds: list[float]):
        self.inner, self.device, self.seconds = inner, device, seconds

    def observe(self, iteration: int, output: torch.Tensor) -> None:
        from dip.core import compute

        compute.synchronize(self.device)
        t = time.perf_counter()
        self.inner.observe(iteration, output)
        compute.synchronize(self.device)
        self.seconds.append(time.perf_counter() - t)


def held_bytes(state: dict) -> int:
    """Bytes of the tensors in an observer's state, lists of tensors (the stopping rule's parameters) included."""
    tensors = [t for v in state.values() for t in (v if isinstance(v, (list, tuple)) else [v]) if torch.is_tensor(t)]
    return sum(t.numel() * t.element_size() for t in tensors)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.observer_cost", description=__doc__.splitlines()[0])
    ap.add_argument("--image", default="barbara")
    ap.add_argument("--data", type=Path, help="data mirror (default: $DIP_DATA_MIRROR or ../shared/data)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--mode", default="fp32", choices=FIT_MODES)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=4, help="timed iterations (after 1 warm-up)")
    args = ap.parse_args(argv)
    from dip.core import compute
    from dip.data.presets import resolve
    from dip.engine.fit import Fit, FitRequest

    image = table1_image(args.image, args.data, "observer_cost")
    mode = MODES[args.mode]
    with tempfile.TemporaryDirectory() as tmp:
        mask = make_mask(image, 0, 0.5, Path(tmp) / "mask.png", "observer_cost")
        req = FitRequest(image=image, mask=mask, gt=image, out=Path(tmp) / "out", preset="table1",
                         params=resolve("table1", {"iterations": NEVER, "eval_every": NEVER}), device=args.device,
                         threads=args.threads, precision=mode.precision, memory_format=mode.memory_format,
                         cuda_graph=mode.cuda_graph)
        fit = Fit(req, progress=False, quiet=True)
        spent: list[float] = []
        fit.observers = {k: Timed(o, fit.device, spent) for k, o in fit.observers.items()}
        fit.iterate(1)  # warm-up (and the CUDA graph capture)
        iters, observed = [], []
        for it in range(2, 2 + args.iterations):
            spent.clear()
            compute.synchronize(fit.device)
            t = time.perf_counter()
            fit.iterate(it)
            compute.synchronize(fit.device)
            iters.append(time.perf_counter() - t)
            observed.append(sum(spent))
        held = held_bytes(fit.average.state_dict()) + held_bytes(fit.stopping.state_dict())
        if fit.device.type == "cuda":
            peak, what = torch.cuda.max_memory_allocated(fit.device), "CUDA peak allocated"
        else:
            peak, what = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "peak RSS"
        fit.close()
    t_iter, t_obs = statistics.median(iters), statistics.median(observed)
    print(f"{args.image} {fit.frame.height}x{fit.frame.width}, table1 network, {args.mode} on {compute.device_name(fit.device)}, "
          f"{fit.threads} threads, {args.iterations} iterations (medians)")
    print(f"iteration {t_iter * 1e3:.1f} ms, of which observers {t_obs * 1e3:.2f} ms = {100 * t_obs / t_iter:.2f}% "
          "(target < 5%)")
    print(f"observer state {held / 2**20:.1f} MiB vs {what} {peak / 2**20:.0f} MiB = {100 * held / peak:.2f}% "
          "(target < 20%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
