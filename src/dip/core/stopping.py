"""A stopping rule that never looks at the ground truth: ES-EMV (Wang et al., "Early Stopping for Deep Image
Prior", arXiv 2112.06074), the exponential-moving-variance variant of their windowed rule ES-WMV.

Deep Image Prior first fits the image, then the corruption; the reconstructions change slowly while the image
is being recovered and faster again once the fit chases the corruption. With x_t the output of iteration t's
training forward pass and α = ``es_alpha``, the running mean and variance of the outputs are

    δ_t = x_t − μ_{t−1},    μ_t = clip(μ_{t−1} + α·δ_t, 0, 1),    v_t = (1 − α)·(v_{t−1} + α·||δ_t||²)

(μ_0 = x_0, v_0 = 0: their ES_EMV notebook's update). The rule keeps t* = argmin v_t; it *fires* when v_t has
not set a new minimum for P = ``es_patience`` consecutive iterations. Its result is what a user would get had
the fit stopped at t*: the unperturbed estimate f_θ(z) with θ = θ_{t*}, the parameters that produced x_{t*}
(not x_{t*} itself, which carries the perturbation σ·ε and scores ~1 dB lower). The rule keeps a copy of the
parameters at each new minimum, on the device, and :meth:`VarianceStop.estimate` runs the one forward pass at
the end. Without parameters (synthetic streams) it keeps x_{t*} instead. Defaults α = 0.1, P = 1000 are those of their notebook. One deviation, needed because v_0 = 0
would otherwise be the minimum forever: the minimum is searched from iteration ⌈1/α⌉ on, once the variance has
had its time constant to fill.

Everything runs on the device as tensors (``torch.where``, no ``.item()``), so the rule adds a few element-wise
operations per iteration over the image and the parameters, and no synchronisation; the fit reads :meth:`fired`
only at evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


class VarianceStop:
    """ES-EMV on the training outputs: the minimum-variance iterate and the iteration the rule fired."""

    def __init__(self, alpha: float, patience: int, device: torch.device,
                 parameters: Sequence[torch.Tensor] | None = None):
        self.alpha, self.patience = alpha, patience
        self.parameters = None if parameters is None else list(parameters)  # θ, read at every observe
        self.best_parameters = None if parameters is None else [p.detach().clone() for p in self.parameters]
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
            self.mean = x.clone()
            self.best_output = x.clone() if self.parameters is None else None
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
        if self.parameters is None:
            self.best_output = torch.where(better, x, self.best_output)
        else:
            for kept, p in zip(self.best_parameters, self.parameters):
                torch.where(better, p.detach(), kept, out=kept)
        self.wait = torch.where(better, 0, self.wait + 1)
        self.fired_at = torch.where((self.wait >= self.patience) & (self.fired_at < 0), iteration, self.fired_at)

    def fired(self) -> int | None:
        """The iteration at which the rule fired, or None (reads the device: call at evaluations only)."""
        at = int(self.fired_at)
        return None if at < 0 else at

    def result(self) -> tuple[int, torch.Tensor | None]:
        """(t*, x_{t*}): the minimum-variance iteration so far (-1 before iteration ⌈1/α⌉) and, for a rule without
        parameters, its output x_{t*} (None with parameters: see :meth:`estimate`)."""
        return int(self.best_iteration), self.best_output

    def estimate(self, net: nn.Module, forward: Callable[[], torch.Tensor]) -> torch.Tensor | None:
        """f_{θ_{t*}}(z): ``forward()`` (the fit's unperturbed estimate) run with the kept parameters in ``net``;
        the net's parameters and buffers are put back afterwards, so the fit is left exactly as it was. None
        before the first minimum (or for a rule without parameters)."""
        if self.best_parameters is None or int(self.best_iteration) < 0:
            return None
        with parameters_swapped(net, self.best_parameters):
            return forward()

    def state_dict(self) -> dict[str, Any]:
        keys = ("mean", "best_output", "variance", "best_variance", "best_iteration", "wait", "fired_at")
        state = {k: None if getattr(self, k) is None else getattr(self, k).clone() for k in keys}
        if self.best_parameters is not None:
            state["best_parameters"] = [p.clone() for p in self.best_parameters]
        return state

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        for k, v in state.items():
            if k == "best_parameters":  # in place: the tensors stay those observe() writes into
                for kept, saved in zip(self.best_parameters, v):
                    kept.copy_(saved)
            else:
                setattr(self, k, None if v is None else v.to(device))


@contextmanager
def parameters_swapped(net: nn.Module, parameters: Sequence[torch.Tensor]) -> Iterator[None]:
    """Run the body with ``parameters`` copied into ``net`` (in place), then put its parameters and buffers (the
    BatchNorm running statistics a training-mode forward moves) back bit for bit."""
    own = list(net.parameters())
    saved = [p.detach().clone() for p in own]
    buffers = [b.clone() for b in net.buffers()]
    try:
        with torch.no_grad():
            for p, q in zip(own, parameters):
                p.copy_(q)
        yield
    finally:
        with torch.no_grad():
            for p, q in zip(own, saved):
                p.copy_(q)
            for b, q in zip(net.buffers(), buffers):
                b.copy_(q)
