"""How long a fit will take, measured before it starts: a short probe on the real size, then thrown away.

:func:`probe_fit` builds a second, throw-away :class:`dip.engine.fit.Fit` from the same request (same
network, z, device, precision, threads and held-out pixels) and times what the run will do:

- building it (inputs, held-out pixels, network): the real fit is built again after the estimate;
- the training iterations (gradients, the observers of every output, the Adam step), each timed on its own:
  the first ``warmup_iterations`` are discarded (allocations, kernel selection, Adam's state: the first
  iterations of a process are slower than the running rate) and the rate is the *median* of the next
  ``probe_iterations`` (one iteration slowed by another program does not move it);
- one evaluation (the estimate f(z), its known-pixel and held-out PSNR, the guard's snapshot), timed after an
  untimed first one, both before the training iterations; the fit evaluates every ``eval_every`` iterations, at the last, and twice after the loop
  (the final estimate and the stopping rule's output);
- with held-out pixels, one classical fill (``dip inpaint`` computes two to choose between DIP and the fill);
- writing one image at the fit's size (the fit writes its outputs, ``dip inpaint`` the result at full size).

The probe writes nothing but that timed PNG, in a temporary folder it removes. The real fit is built
afterwards from the seed, exactly as without the probe (its network, z and perturbation come from their own
seeded generators), so the probe never changes the result. :func:`estimate` is the arithmetic (no clock);
:func:`eta_lines` turns it into the lines ``dip inpaint`` prints: the estimate, and when it exceeds
``warn_minutes`` (``dip/inpaint/auto.yaml``; ``DIP_ETA_WARN_MINUTES`` overrides it) the faster choices.
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

from dip.core import compute
from dip.engine.progress import minutes
from dip.engine.request import FitRequest
from dip.inpaint.autopreset import settings

FINAL_EVALUATIONS = 2  # after the loop: the guarded final estimate and the stopping rule's output (dip.engine.fit.finish)
FILLS = 2  # dip.inpaint.choice.decide: the fill for the choice (held-out pixels missing) and the one it writes


class Probe(NamedTuple):
    seconds_per_iteration: float  # the running rate: median of the timed iterations after the warm-up
    resumes_at: int  # the iteration a checkpoint of this very fit would resume at; 0 without one
    seconds_per_evaluation: float = 0.0
    setup_seconds: float = 0.0  # building the fit
    fill_seconds: float = 0.0  # one classical fill (0 without held-out pixels: dip inpaint then computes none)
    write_seconds: float = 0.0  # writing one image at the fit's size
    images: int = 0  # the images the fit writes


class Estimate(NamedTuple):
    """The run time in three parts (seconds): ``before`` the loop (building the fit), the ``loop`` (iterations
    and their evaluations; what the running rate measures) and ``after`` it (final evaluations, the choice
    between DIP and the fill, the files)."""

    before: float
    loop: float
    after: float
    iterations: int  # left to run
    evaluations: int  # of them, those that evaluate

    @property
    def total(self) -> float:
        return self.before + self.loop + self.after


def evaluations(start: int, total: int, every: int) -> int:
    """How many of the iterations ``start`` .. ``total - 1`` evaluate: every ``every``-th and the last
    (:meth:`dip.engine.fit.Fit.due`)."""
    return sum(1 for it in range(start, total) if it % every == 0 or it == total - 1)


def estimate(probe: Probe, iterations: int, eval_every: int, scale: float = 1.0) -> Estimate:
    """The run time of a fit of ``iterations`` (evaluating every ``eval_every``) from ``probe``'s measurements;
    ``scale``: the pixels of the picture ``dip inpaint`` writes over those of the fit (>1 after ``--max-side``)."""
    left = max(iterations - probe.resumes_at, 0)
    n_eval = evaluations(probe.resumes_at, iterations, eval_every)
    loop = left * probe.seconds_per_iteration + n_eval * probe.seconds_per_evaluation
    after = (FINAL_EVALUATIONS * probe.seconds_per_evaluation + FILLS * probe.fill_seconds
             + probe.write_seconds * (probe.images + scale))
    return Estimate(probe.setup_seconds, loop, after, left, n_eval)


def _timed(fit: Any, work: Callable[[], object]) -> float:
    """Seconds ``work`` takes, queued device work included."""
    compute.synchronize(fit.device)
    t0 = time.perf_counter()
    work()
    compute.synchronize(fit.device)
    return time.perf_counter() - t0


def _train(fit: Any, it: int) -> None:
    """One training iteration as :meth:`dip.engine.fit.Fit.iterate` runs it, without its evaluation."""
    from dip.engine.fit import observe

    fit.step.gradients()
    observe(fit, it)
    fit.step.update()


def _measure(fit: Any, resumes_at: int, setup: float) -> Probe:
    """The probe's timings on the throw-away ``fit`` (module docstring)."""
    from dip.core.classical import fill
    from dip.data.images import write_png

    eta = settings()["eta"]
    warm, n = eta["warmup_iterations"], eta["probe_iterations"]
    # the evaluations first, at the untrained state the fit's own first evaluation sees (accepted by its guard,
    # where a few probe steps at a diverging learning rate could leave a state the guard cannot restore)
    evals = [_timed(fit, lambda it=it: fit.evaluate(it, 1.0)) for it in (0, 0)]  # the first warms up
    steps = [_timed(fit, lambda it=it: _train(fit, it)) for it in range(1, warm + n + 1)][warm:]
    fill_seconds = 0.0
    if fit.validation is not None:
        fill_seconds = _timed(fit, lambda: fill(fit.inputs.image, fit.inputs.known))
    est = fit.estimate()
    with tempfile.TemporaryDirectory() as folder:
        write = _timed(fit, lambda: write_png(Path(folder) / "probe.png", est))
    images = 3 + (fit.validation is not None)  # output, output_ema, output_es (+ output_val)
    return Probe(statistics.median(steps), resumes_at, evals[-1], setup, fill_seconds, write, images)


def probe_fit(req: FitRequest) -> Probe:
    """Time ``req``'s fit on a throw-away copy of it (nothing is kept), and read where it would resume."""
    from dip.engine.fit import Fit

    t0 = time.perf_counter()
    fit = Fit(req, quiet=True)
    setup = time.perf_counter() - t0
    try:
        state = fit.checkpoint.load(quiet=True)  # the real fit says what it does with the checkpoint
        resumes_at = int(state["iteration"]) if state is not None else 0
        del state
        return _measure(fit, resumes_at, setup)
    finally:
        fit.close()
        del fit
        gc.collect()


def warn_seconds() -> float:
    """The run time above which the faster choices are printed."""
    forced = os.environ.get("DIP_ETA_WARN_MINUTES")
    return 60 * float(forced if forced else settings()["eta"]["warn_minutes"])


def faster_side(height: int, width: int, seconds: float, budget: float) -> int | None:
    """A --max-side (a multiple of 64 below the longer side) whose fit should take about ``budget`` seconds,
    assuming time in proportion to the pixels; None when even 64 would not."""
    side = math.floor(max(height, width) * math.sqrt(budget / seconds) / 64) * 64
    return side if 64 <= side < max(height, width) else None


def eta_lines(probe: Probe, plan: Estimate, iterations: int, device: str, size: tuple[int, int],
              auto_reduced: bool, stop_early: bool) -> list[str]:
    """The estimate line, and (over the threshold) the line naming faster choices.

    ``plan``: :func:`estimate` of ``probe`` for a fit of ``iterations``; ``auto_reduced``: the fit already uses
    auto's reduced settings for this device (so --preset auto is not suggested); ``stop_early``: --stop auto
    may end the run sooner (the estimate is then an upper bound).
    """
    total, left, eta = plan.total, plan.iterations, settings()["eta"]
    bound = "at most " if stop_early else ""
    resumed = f", resuming at iteration {probe.resumes_at} of {iterations}" if probe.resumes_at else ""
    lines = [f"estimated time: {bound}{minutes(total)} ({left} iteration{'s' if left != 1 else ''} at "
             f"{probe.seconds_per_iteration:.3f} s/it on {device}{resumed}, {plan.evaluations} evaluations at "
             f"{probe.seconds_per_evaluation:.3f} s, {minutes(plan.before + plan.after)} to set up and write the "
             f"result; measured by a probe of {eta['probe_iterations']} iterations after {eta['warmup_iterations']}"
             " warm-up ones)"]
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
