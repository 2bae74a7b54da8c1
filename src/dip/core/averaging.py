"""Averaging the network's outputs over iterations (the authors' denoising notebook; GP-DIP reports it too).

With x_t the output of iteration t's training forward pass (z perturbed), the running average is

    a_0 = x_0,    a_t = w·a_{t−1} + (1 − w)·x_t        (w = ``ema_weight``, 0.99 by default)

an exponential moving average over roughly the last 1/(1 − w) iterations. It smooths out the perturbation and
the last iterations' drift toward the corruption, and costs two element-wise operations per iteration on the
device (no synchronisation, so a CUDA graph fit keeps its pace).
"""

from __future__ import annotations

from typing import Any

import torch


class OutputAverage:
    """The exponential moving average a_t of the training outputs (padded size, fp32, on the fit's device)."""

    def __init__(self, weight: float):
        self.weight = weight
        self.average: torch.Tensor | None = None

    def observe(self, iteration: int, output: torch.Tensor) -> None:
        """Fold in x_t, the output of iteration ``iteration`` (``output`` is not kept)."""
        if self.average is None:
            self.average = output.detach().clone()
        else:
            self.average.mul_(self.weight).add_(output.detach(), alpha=1.0 - self.weight)

    def state_dict(self) -> dict[str, Any]:
        return {"average": None if self.average is None else self.average.clone()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.average = None if state["average"] is None else state["average"].to(device)
