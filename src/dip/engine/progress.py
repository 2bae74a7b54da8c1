"""Progress of a fit: a tqdm bar on a terminal, one plain line per evaluation in logs (pipeline, cluster).

The plain line (``dip inpaint --help`` names its parts)::

    [dip] it 200/1000 known-pixel psnr 27.73 dB, 0.055 s/it, 44.0 s left

``it N/M``: N of the M iterations done (the evaluation at N scores the estimate after N steps, so the first line
is ``it 0/M`` and the last ``it M/M``); the PSNR of that estimate on the pixels the mask keeps (the only pixels
with a reference when restoring a photo); the running rate (over the last tenth of the time so far, at least
``WINDOW_SECONDS``, so a machine whose load changes is followed) and the time left at that rate. With a ground
truth (``dip fit``) the line adds its PSNR, computed off the main thread, with the iteration it belongs to.

The estimate: ``dip inpaint`` states one before the fit (:mod:`dip.inpaint.time_estimate`, a short probe) and hands it over with
:meth:`Progress.expect`. While the fit runs, the estimate of the whole run (time so far + time left at the running
rate + the probe's estimate of the work after the loop) is said again whenever it moves by more than a third (``REVISE_BY``) from the last one said; at most once
per span of the running rate, and not when less than that span is left (a noisy machine would otherwise repeat it
every few iterations).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any

REVISE_BY = 1 / 3  # say the estimate again when it moves by more than this fraction
WINDOW_SECONDS = 2.0  # the shortest span the running rate is measured over (else a tenth of the time so far)


def minutes(seconds: float) -> str:
    """A duration as the estimates say it (here and dip.inpaint.time_estimate): "12.3 s", or "4.5 min" from a
    minute on."""
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


class RunningRate:
    """Seconds per iteration over the last ``window`` seconds or more (None until that much has been seen)."""

    def __init__(self) -> None:
        self.window = WINDOW_SECONDS
        self.samples: deque[tuple[float, int]] = deque()  # (time, iterations done)

    def add(self, t: float, done: int, window: float) -> None:
        self.window = window
        self.samples.append((t, done))
        while len(self.samples) > 2 and t - self.samples[1][0] >= self.window:
            self.samples.popleft()

    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, n0), (t1, n1) = self.samples[0], self.samples[-1]
        return (t1 - t0) / (n1 - n0) if n1 > n0 and t1 - t0 >= self.window else None


class Progress:
    """A tqdm bar on a terminal; a plain ``[dip] it N/M ...`` line per evaluation otherwise (module docstring).

    ``enabled`` None means "only on a terminal"; False is silent except for the plain lines (benchmarks pass
    ``quiet=True`` to silence those too).
    """

    def __init__(self, total: int, enabled: bool | None, desc: str, quiet: bool = False):
        self.tty = sys.stderr.isatty() if enabled is None else enabled
        self.total, self.desc, self.quiet = total, desc, quiet
        self.t0, self.initial, self.done = time.perf_counter(), 0, 0
        self.bar: Any = None
        self.running = RunningRate()
        self.stated: float | None = None  # the last estimate of the whole run that was said (seconds)
        self.before = self.after = 0.0  # of it, the work before and after the loop
        self.said_at = -float("inf")  # when it was said

    def begin(self, initial: int) -> None:
        """Start counting at iteration ``initial`` (a resumed fit starts where its checkpoint was)."""
        self.t0, self.initial, self.done = time.perf_counter(), initial, initial
        self.running = RunningRate()  # its first sample comes after the first iteration
        if self.tty and not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=initial, desc=self.desc, unit="it", dynamic_ncols=True)

    def expect(self, seconds: float, after: float = 0.0, before: float = 0.0) -> None:
        """The estimate said before the fit: ``seconds`` for the iterations from :meth:`begin` to the end, ``after``
        for the work after the loop (final evaluations, outputs), which the running rate does not see, and
        ``before`` for the work before :meth:`begin` (building the fit), counted as estimated in every revision."""
        self.stated, self.said_at = before + seconds + after, time.perf_counter()
        self.before, self.after = before, after

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)
        self.done += n
        now = time.perf_counter()
        self.running.add(now, self.done, max(WINDOW_SECONDS, (now - self.t0) / 10))
        if self.stated is not None:
            self.revise(now)

    def rate(self) -> float | None:
        """The running rate, else the average since :meth:`begin` (None before the first iteration)."""
        r = self.running.rate()
        if r is None and self.done > self.initial:
            r = (time.perf_counter() - self.t0) / (self.done - self.initial)
        return r

    def revise(self, now: float) -> None:
        """Say the estimate again when the running rate moves it by more than ``REVISE_BY``."""
        r, span = self.running.rate(), self.running.window
        if r is None or self.stated is None or now - self.said_at < span:
            return
        left = r * (self.total - self.done) + self.after
        whole = self.before + now - self.t0 + left
        if left - self.after >= span and abs(whole - self.stated) > REVISE_BY * self.stated:
            self.say(f"estimated time revised: {minutes(left)} left, {minutes(whole)} in all (was "
                     f"{minutes(self.stated)}; now {r:.3f} s/it)")
            self.stated, self.said_at = whole, now

    def say(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(f"[dip] {text}", file=sys.stderr)
        else:
            print(f"[dip] {text}", file=sys.stderr, flush=True)

    def report(self, it: int, psnr_known: float, row: dict[str, Any] | None, note: str | None = None) -> None:
        """Show the evaluation after ``it`` steps (``psnr_known``: its PSNR on the known pixels), the latest row
        with ground-truth metrics (``row``, perhaps of an earlier iteration), and a note."""
        if self.quiet:
            return
        gt = row is not None and row["psnr"] == row["psnr"]
        if self.bar is not None:
            post = {"known psnr": f"{psnr_known:.2f} dB", **({"gt psnr": f"{row['psnr']:.2f} dB"} if gt else {})}
            self.bar.set_postfix({**post, **({"stop": note} if note else {})}, refresh=False)
            return
        r = self.rate()
        speed = ("rate not yet measured" if r is None
                 else f"{r:.3f} s/it, {minutes(r * max(self.total - it, 0))} left")
        gt_txt = f", gt psnr {row['psnr']:.2f} dB at it {row['iteration']}" if gt else ""
        self.say(f"it {it}/{self.total} known-pixel psnr {psnr_known:.2f} dB, {speed}{gt_txt}"
                 f"{'; ' + note if note else ''}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
