"""The authors' backtracking guard: undo a step that made the fit collapse.

At every evaluation the estimate's PSNR over the known pixels, p_t, is compared with that of the last accepted
evaluation, p_good. The state is *accepted* (and snapshotted) unless

    the loss or p_t is not finite,  or  p_t < p_good − backtrack_db       (the authors: 5 dB),

in which case the parameters and Adam's state go back to the last accepted snapshot (a *backtrack*). A fit
that needs more than ``max_backtracks`` of them, or collapses before any state was accepted, stops with
:class:`~dip.errors.DivergedError` (exit 3, nothing written).
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import torch
from torch import nn

from dip.errors import DivergedError

log = logging.getLogger("dip.core.guard")


def snapshot(net: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """A copy of the parameters, buffers and optimiser state (the guard's snapshot and the checkpoint's).

    Tensor by tensor (``clone``), not ``copy.deepcopy``: the same values at a sixth of the cost, which is what
    keeps the evaluation share small (docs/performance.md, "Evaluation cost").
    """
    return {"net": {k: v.detach().clone() for k, v in net.state_dict().items()},
            "opt": _copy_optimizer_state(optimizer.state_dict())}


def restore(net: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Put a :func:`snapshot` back (in place: a captured CUDA graph keeps seeing the parameters).

    The optimiser gets a copy: ``Optimizer.load_state_dict`` keeps the given tensors when dtype and device
    match, and Adam's in-place updates would then change the snapshot the guard may need again.
    """
    net.load_state_dict(state["net"])
    optimizer.load_state_dict(_copy_optimizer_state(state["opt"]))


def _copy_optimizer_state(opt: dict[str, Any]) -> dict[str, Any]:
    return {"state": {i: {k: v.clone() if torch.is_tensor(v) else copy.deepcopy(v) for k, v in st.items()}
                      for i, st in opt["state"].items()},
            "param_groups": copy.deepcopy(opt["param_groups"])}


class Guard:
    """The backtracking rule and the last accepted state."""

    def __init__(self, backtrack_db: float, max_backtracks: int, subject: str):
        self.backtrack_db, self.max_backtracks, self.subject = backtrack_db, max_backtracks, subject
        self.good: dict[str, Any] | None = None
        self.good_psnr = -math.inf
        self.good_iteration: int | None = None
        self.backtracks = 0

    def check(self, iteration: int, psnr_masked: float, net: nn.Module, optimizer: torch.optim.Optimizer,
              loss: float | None = None) -> bool:
        """Accept the current state (snapshot it, return True) or restore the last accepted one (return False).

        ``loss`` is None when there is none to check (the final iterate): the estimate's PSNR decides alone.
        """
        if loss is not None and not math.isfinite(loss):
            why = "non-finite loss"
        elif not math.isfinite(psnr_masked):
            why = "non-finite estimate"
        elif psnr_masked < self.good_psnr - self.backtrack_db:
            why = f"masked PSNR fell to {psnr_masked:.2f} dB from {self.good_psnr:.2f}"
        else:
            self.good, self.good_psnr, self.good_iteration = snapshot(net, optimizer), psnr_masked, iteration
            return True
        self.backtracks += 1
        if self.good is None or self.backtracks > self.max_backtracks:
            raise DivergedError(self.subject, f"diverged at iteration {iteration} ({why}) and could not recover "
                                f"after {self.backtracks - 1} restores; lower the learning rate")
        log.warning("iteration %d: %s; restoring the last good state (backtrack %d)", iteration, why,
                    self.backtracks)
        restore(net, optimizer, self.good)
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"good": self.good, "good_psnr": self.good_psnr, "good_iteration": self.good_iteration,
                "backtracks": self.backtracks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.good, self.good_psnr = state["good"], state["good_psnr"]
        self.good_iteration, self.backtracks = state.get("good_iteration"), state["backtracks"]
