"""How long a fit will take, measured before it starts: a short probe on the real size, then thrown away.

:func:`probe_fit` builds a second, throw-away :class:`dip.engine.fit.Fit` from the same request (same
network, z, device, precision and threads), runs ``warmup_iterations`` untimed and ``probe_iterations`` timed
steps, and frees it. The real fit is built afterwards from the seed, exactly as without the probe (its
network, z and perturbation come from their own seeded generators), so the probe never changes the result.

:func:`eta_lines` turns the measured rate into the lines ``dip inpaint`` prints: the estimate, and when it
exceeds ``warn_minutes`` (``dip/inpaint/auto.yaml``; ``DIP_ETA_WARN_MINUTES`` overrides it) the faster choices.
"""

from __future__ import annotations

import gc
import math
import os
import time
from typing import NamedTuple

from dip.core import compute
from dip.engine.request import FitRequest
from dip.inpaint.autopreset import settings


class Probe(NamedTuple):
    seconds_per_iteration: float
    resumes_at: int  # the iteration a checkpoint of this very fit would resume at; 0 without one


def probe_fit(req: FitRequest) -> Probe:
    """Time ``req``'s fit on a throw-away copy of it (nothing is written), and read where it would resume."""
    from dip.engine.fit import Fit

    eta = settings()["eta"]
    fit = Fit(req, quiet=True)
    try:
        state = fit.checkpoint.load(quiet=True)  # the real fit says what it does with the checkpoint
        resumes_at = int(state["iteration"]) if state is not None else 0
        del state
        for _ in range(eta["warmup_iterations"]):
            fit.step.gradients()
            fit.step.update()
        compute.synchronize(fit.device)
        t0 = time.perf_counter()
        for _ in range(eta["probe_iterations"]):
            fit.step.gradients()
            fit.step.update()
        compute.synchronize(fit.device)
        return Probe((time.perf_counter() - t0) / eta["probe_iterations"], resumes_at)
    finally:
        fit.close()
        del fit
        gc.collect()


def warn_seconds() -> float:
    """The run time above which the faster choices are printed."""
    forced = os.environ.get("DIP_ETA_WARN_MINUTES")
    return 60 * float(forced if forced else settings()["eta"]["warn_minutes"])


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def faster_side(height: int, width: int, seconds: float, budget: float) -> int | None:
    """A --max-side (a multiple of 64 below the longer side) whose fit should take about ``budget`` seconds,
    assuming time in proportion to the pixels; None when even 64 would not."""
    side = math.floor(max(height, width) * math.sqrt(budget / seconds) / 64) * 64
    return side if 64 <= side < max(height, width) else None


def eta_lines(seconds_per_iteration: float, iterations: int, device: str, size: tuple[int, int],
              auto_reduced: bool, stop_early: bool, resumes_at: int = 0) -> list[str]:
    """The estimate line, and (over the threshold) the line naming faster choices.

    ``auto_reduced``: the fit already uses auto's reduced settings for this device (so --preset auto is not
    suggested); ``stop_early``: --stop auto may end the run sooner (the estimate is then an upper bound);
    ``resumes_at``: a checkpoint's iteration, so only ``iterations - resumes_at`` are left to run.
    """
    left = max(iterations - resumes_at, 0)
    total = seconds_per_iteration * left
    bound = "at most " if stop_early else ""
    resumed = f", resuming at iteration {resumes_at} of {iterations}" if resumes_at else ""
    lines = [f"estimated time: {bound}{minutes(total)} ({left} iteration{'s' if left != 1 else ''} at "
             f"{seconds_per_iteration:.3f} s/it on {device}{resumed}, measured by a "
             f"{settings()['eta']['probe_iterations']}-iteration probe)"]
    limit = warn_seconds()
    if total > limit:
        options = []
        if not auto_reduced and device != "cuda":
            options.append("--preset auto (reduced settings for this device)")
        side = faster_side(*size, total, limit)
        if side:
            options.append(f"--max-side {side} (about {minutes(total * (side / max(size)) ** 2)})")
        if device != "cuda":
            options.append("a CUDA GPU")
        options.append("fewer --iterations")
        lines.append(f"that is more than {minutes(limit)}; faster: {', or '.join(options)}")
    return lines
