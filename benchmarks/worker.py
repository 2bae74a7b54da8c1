"""One real fit in one mode, iterated on request: in this process (:class:`Worker`) or in a child (:class:`Child`).

A :class:`Worker` builds a :class:`dip.engine.fit.Fit` on a synthetic grayscale image with a 50% mask and runs
:meth:`dip.engine.fit.Fit.iterate` one iteration at a time (z + noise, forward under the mode's autocast, masked MSE,
backward, Adam step); evaluation never falls inside an iteration it runs. bench_fit runs one worker per mode in
its own process (``python -m benchmarks.worker SPEC``) so that each has its own peak resident memory; the
protocol is one command per line on stdin and one ``@@``-prefixed JSON reply per line on stdout.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.modes import Mode, mode_of

PROTO = "@@"  # prefix of the worker's protocol lines on stdout (anything else printed there is ignored)
NEVER = 10**9  # eval_every and iterations of a benchmark fit: no evaluation inside its iterations


class Worker:
    """One Fit in one mode, one iteration per :meth:`step`."""

    def __init__(self, mode: Mode, device: str, threads: int, preset: str, overrides: dict[str, Any],
                 workdir: Path):
        self.mode, self.device, self.threads, self.workdir = mode, device, threads, workdir
        self.preset, self.overrides = preset, overrides
        self.fit: Any = None

    def setup(self, size: int, warmup: int) -> dict[str, Any]:
        """Build the fit at ``size`` x ``size`` (compiled for -compile modes), then ``warmup`` iterations."""
        from dip.data.presets import resolve
        from dip.engine.fit import Fit, FitRequest

        if self.fit is not None:  # free the previous size's fit first
            self.fit.close()
            self.fit = None
        if self.device == "cuda":
            torch.cuda.empty_cache()
        image, mask = synthetic_inputs(self.workdir, size)
        params = resolve(self.preset, {**self.overrides, "eval_every": NEVER, "iterations": NEVER})
        req = FitRequest(image=image, mask=mask, out=self.workdir / f"out-{self.mode.name}", preset=self.preset,
                         params=params, seed=0, device=self.device, threads=self.threads,
                         precision=self.mode.precision, memory_format=self.mode.memory_format,
                         cuda_graph=self.mode.cuda_graph)
        t0 = time.perf_counter()
        self.fit = Fit(req, progress=False, quiet=True)
        if self.mode.compile:
            self.fit.step.net = torch.compile(self.fit.net, dynamic=False)
        self.it = 1
        if self.fit.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.fit.device)
        warm = [self.step()["s"] for _ in range(warmup)]
        return {"setup_s": time.perf_counter() - t0, "warmup_s": warm}

    def step(self) -> dict[str, Any]:
        """One iteration, timed with the device synchronized before and after."""
        from dip.core import compute

        compute.synchronize(self.fit.device)
        t0 = time.perf_counter()
        self.fit.iterate(self.it)
        compute.synchronize(self.fit.device)
        self.it += 1
        return {"s": time.perf_counter() - t0}

    def memory(self) -> dict[str, Any]:
        """Peak resident memory of this process (and the peak CUDA allocation on a GPU), in MB."""
        out = {"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # KiB on Linux
        if self.fit.device.type == "cuda":
            out["cuda_max_mb"] = torch.cuda.max_memory_allocated(self.fit.device) / 2**20
        return out


def worker_main(spec: dict[str, Any]) -> None:
    """Serve commands from stdin: ``setup SIZE WARMUP``, ``step``, ``memory``, ``quit``."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else the libraries print goes to stderr
    w = Worker(mode_of(spec["mode"])[0], spec["device"], spec["threads"], spec["preset"], spec["overrides"],
               Path(spec["workdir"]))
    print(PROTO + json.dumps({"ready": True}), file=proto)
    for line in sys.stdin:
        cmd, *args = line.split()
        try:
            if cmd == "setup":
                reply = w.setup(int(args[0]), int(args[1]))
            elif cmd == "step":
                reply = w.step()
            elif cmd == "memory":
                reply = w.memory()
            else:
                break
        except Exception as e:  # report, do not hang the parent
            reply = {"error": f"{type(e).__name__}: {e}"}
        print(PROTO + json.dumps(reply), file=proto)
    if w.fit is not None:
        w.fit.close()


class Child:
    """The parent's handle on one worker process (``python -m benchmarks.worker SPEC``)."""

    def __init__(self, mode: str, device: str, threads: int, preset: str, overrides: dict[str, Any],
                 workdir: Path):
        spec = json.dumps({"mode": mode, "device": device, "threads": threads, "preset": preset,
                           "overrides": overrides, "workdir": str(workdir)})
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1", **mode_of(mode)[1])
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.worker", spec], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.mode = mode

    def ask(self, command: str = "") -> dict[str, Any]:
        """Send a command (none: wait for the ready line) and return the worker's reply."""
        if command:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith(PROTO):
                reply = json.loads(line[len(PROTO):])
                if "error" in reply:
                    raise RuntimeError(f"worker {self.mode}: {reply['error']}")
                return reply
        raise RuntimeError(f"worker {self.mode} exited with {self.proc.wait()}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def synthetic_inputs(workdir: Path, size: int) -> tuple[Path, Path]:
    """A smooth textured grayscale image and a 50% Bernoulli mask, size x size (kept in workdir)."""
    import numpy as np
    from PIL import Image

    image, mask = workdir / f"image{size}.png", workdir / f"mask{size}.png"
    if not image.exists():
        rng = np.random.default_rng(0)
        y, x = np.mgrid[0:size, 0:size] / size
        a = 0.5 + 0.3 * np.sin(12 * x) * np.cos(8 * y) + 0.05 * rng.standard_normal((size, size))
        Image.fromarray(np.clip(a * 255, 0, 255).astype(np.uint8)).save(image)
        Image.fromarray(np.where(rng.random((size, size)) >= 0.5, 255, 0).astype(np.uint8)).save(mask)
    return image, mask


if __name__ == "__main__":
    worker_main(json.loads(sys.argv[1]))
