"""The fit's curve: one row per evaluation of the estimate, scored against the ground truth off the main thread.

A row at ``iteration`` t describes the estimate after t Adam steps: the loss of that iteration's (perturbed)
forward pass, the PSNR over the known pixels (what the guard watches) and, when there is a ground truth, PSNR and
SSIM against it. Those two run on a worker thread while the device goes on iterating; rows join the curve in
iteration order (:meth:`Curve.collect`), and nothing but the records depends on them.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from dip.core.quality import psnr, ssim

COLUMNS = ("iteration", "loss", "psnr_masked", "psnr", "ssim")


class Curve:
    """Evaluation rows in iteration order, and the best ground-truth PSNR among them (the oracle)."""

    def __init__(self, gt: np.ndarray | None):
        self.gt = gt
        self.rows: list[dict[str, float]] = []
        self.best: tuple[float, int] = (-math.inf, -1)
        self.pending: list[tuple[dict[str, float], Future | None]] = []
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dip-eval")

    def add(self, iteration: int, loss: float, psnr_masked: float, estimate: np.ndarray, **extra: float) -> None:
        """Queue a row; its ground-truth metrics are computed on the worker thread. ``extra`` columns (dip
        inpaint's held-out ``psnr_val``) follow the standard ones in curve.csv."""
        row = {"iteration": iteration, "loss": loss, "psnr_masked": psnr_masked, "psnr": math.nan, "ssim": math.nan,
               **extra}
        gt = self.gt
        future = None if gt is None else self.pool.submit(lambda: (psnr(gt, estimate), ssim(gt, estimate)))
        self.pending.append((row, future))
        self.collect(wait=False)

    def collect(self, wait: bool) -> None:
        """Move finished rows (all of them when ``wait``) into :attr:`rows`, in iteration order."""
        while self.pending and (wait or self.pending[0][1] is None or self.pending[0][1].done()):
            row, future = self.pending.pop(0)
            if future is not None:
                row["psnr"], row["ssim"] = future.result()
                if row["psnr"] > self.best[0]:
                    self.best = (row["psnr"], row["iteration"])
            self.rows.append(row)

    @property
    def last(self) -> dict[str, float] | None:
        return self.rows[-1] if self.rows else None

    def csv(self) -> str:
        """The rows as ``curve.csv`` text (empty cells for missing values)."""
        columns = COLUMNS + tuple(k for k in (self.rows[0] if self.rows else {}) if k not in COLUMNS)
        lines = [",".join(columns)]
        lines += [",".join("" if r[k] != r[k] else repr(r[k]) for k in columns) for r in self.rows]
        return "\n".join(lines) + "\n"

    def state_dict(self) -> dict[str, Any]:
        self.collect(wait=True)
        return {"curve": self.rows, "best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows, self.best = state["curve"], tuple(state["best"])

    def close(self) -> None:
        self.collect(wait=True)
        self.pool.shutdown()
