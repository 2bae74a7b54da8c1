"""A stopping rule that never looks at the ground truth: ES-EMV (Wang et al., "Early Stopping for Deep Image
Prior", arXiv 2112.06074), the exponential-moving-variance variant of their windowed rule ES-WMV.

Deep Image Prior first fits the image, then the corruption; the reconstructions change slowly while the image
is being recovered and faster again once the fit chases the corruption. With x_t the output of iteration t's
training forward pass and α = ``es_alpha``, the running mean and variance of the outputs are

    δ_t = x_t − μ_{t−1},    μ_t = clip(μ_{t−1} + α·δ_t, 0, 1),    v_t = (1 − α)·(v_{t−1} + α·||δ_t||²)

(μ_0 = x_0, v_0 = 0: their ES_EMV notebook's update). The rule keeps t* = argmin v_t and the output x_{t*}; it
*fires* when v_t has not set a new minimum for P = ``es_patience`` consecutive iterations, and the early-stopped
result is x_{t*}. Defaults α = 0.1, P = 1000 are those of their notebook. One deviation, needed because v_0 = 0
would otherwise be the minimum forever: the minimum is searched from iteration ⌈1/α⌉ on, once the variance has
had its time constant to fill.

Everything runs on the device as tensors (``torch.where``, no ``.item()``), so the rule adds a dozen small
element-wise operations per iteration and no synchronisation; the fit reads :meth:`fired` only at evaluations.
"""

from __future__ import annotations

import math
from typing import Any

import torch


class VarianceStop:
    """ES-EMV on the training outputs: the minimum-variance iterate and the iteration the rule fired."""

    def __init__(self, alpha: float, patience: int, device: torch.device):
        self.alpha, self.patience = alpha, patience
        self.start = math.ceil(1.0 / alpha)
        self.mean: torch.Tensor | None = None
        self.best_output: torch.Tensor | None = None
        scalar = lambda v, dtype=torch.float64: torch.tensor(v, dtype=dtype, device=device)  # noqa: E731
        self.variance = scalar(0.0)
        self.best_variance = scalar(math.inf)
        self.best_iteration = scalar(-1, torch.int64)
        self.wait = scalar(0, torch.int64)
        self.fired_at = scalar(-1, torch.int64)

    def observe(self, iteration: int, output: torch.Tensor) -> None:
        """Update μ, v with x_t = ``output`` and, from iteration ⌈1/α⌉ on, the minimum and the patience count."""
        x = output.detach()
        if self.mean is None:
            self.mean, self.best_output = x.clone(), x.clone()
            return
        a = self.alpha
        delta = x - self.mean
        self.mean.add_(delta, alpha=a).clamp_(0.0, 1.0)
        self.variance.add_(delta.double().pow(2).sum(), alpha=a).mul_(1.0 - a)
        if iteration < self.start:
            return
        better = self.variance < self.best_variance
        self.best_variance = torch.where(better, self.variance, self.best_variance)
        self.best_iteration = torch.where(better, iteration, self.best_iteration)
        self.best_output = torch.where(better, x, self.best_output)
        self.wait = torch.where(better, 0, self.wait + 1)
        self.fired_at = torch.where((self.wait >= self.patience) & (self.fired_at < 0), iteration, self.fired_at)

    def fired(self) -> int | None:
        """The iteration at which the rule fired, or None (reads the device: call at evaluations only)."""
        at = int(self.fired_at)
        return None if at < 0 else at

    def result(self) -> tuple[int, torch.Tensor | None]:
        """(t*, x_{t*}): the minimum-variance iteration so far (-1 before iteration ⌈1/α⌉) and its output."""
        return int(self.best_iteration), self.best_output

    def state_dict(self) -> dict[str, Any]:
        keys = ("mean", "best_output", "variance", "best_variance", "best_iteration", "wait", "fired_at")
        return {k: None if getattr(self, k) is None else getattr(self, k).clone() for k in keys}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        for k, v in state.items():
            setattr(self, k, None if v is None else v.to(device))
