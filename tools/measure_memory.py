"""Measure a fit's peak memory (CPU: peak RSS growth) and compare it with dip.inpaint.memory's estimate.

    .venv/bin/python tools/measure_memory.py --preset fig7_text --sizes 128 256 384 --channels 3

Each size runs in its own process (peak RSS only grows): it builds the fit, runs a few iterations and prints
the growth of ``ru_maxrss`` from just before the fit was built. ``ACTIVATION_FACTOR`` in dip.inpaint.memory is the
measured peak over the counted activations.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def measure(preset: str, size: int, channels: int, iterations: int) -> dict:
    """Peak RSS growth of a fit at size x size, in this process."""
    from dip.data.presets import resolve
    from dip.engine.fit import Fit
    from dip.engine.request import FitRequest
    from dip.inpaint.memory import activation_bytes, fit_bytes

    params = resolve(preset, {"iterations": 10**6, "eval_every": 10**6})
    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    shape = (size, size, 3) if channels == 3 else (size, size)
    Image.fromarray(rng.integers(0, 256, shape).astype(np.uint8)).save(tmp / "img.png")
    Image.fromarray(np.where(rng.random((size, size)) < 0.5, 255, 0).astype(np.uint8)).save(tmp / "mask.png")
    req = FitRequest(image=tmp / "img.png", mask=tmp / "mask.png", out=tmp / "out", preset=preset, params=params,
                     device="cpu")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    fit = Fit(req, quiet=True)
    for it in range(1, iterations + 1):  # not 0: iteration 0 evaluates
        fit.iterate(it)
    fit.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    est = fit_bytes(params, channels, size, size)
    return {"preset": preset, "size": size, "channels": channels, "measured_mib": peak / 2**20,
            "estimate_mib": est / 2**20, "activations_mib": activation_bytes(params, channels, size, size) / 2**20,
            "ratio": est / peak}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="fig7_text")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        print(json.dumps(measure(a.preset, a.sizes[0], a.channels, a.iterations)))
        return
    for size in a.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", "--preset", a.preset, "--sizes", str(size),
                              "--channels", str(a.channels), "--iterations", str(a.iterations)],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out)
        print(f"{r['preset']} {r['size']}x{r['size']}x{r['channels']}: measured {r['measured_mib']:8.0f} MiB, "
              f"estimate {r['estimate_mib']:8.0f} MiB (activations {r['activations_mib']:.0f}), "
              f"estimate/measured {r['ratio']:.2f}", flush=True)


if __name__ == "__main__":
    main()
