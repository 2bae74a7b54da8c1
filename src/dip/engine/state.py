"""What a checkpoint holds of a fit: its training state, saved and put back bit for bit.

:class:`TrainingState` gathers references to the parts of one fit that change while it runs: the network's
parameters and buffers with Adam's state, z, every random generator, the curve, the guard and the observers.
:meth:`~TrainingState.state_dict` is what :class:`dip.engine.checkpoint.Checkpoint` writes, and
:meth:`~TrainingState.load_state_dict` puts it back into a freshly built fit of the same fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from dip.core.curve import Curve
from dip.core.guard import restore, snapshot


@dataclass
class TrainingState:
    """References to a fit's changing parts (nothing is copied until :meth:`state_dict`)."""

    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    step: Any  # dip.core.step.EagerStep | GraphStep: z and the perturbation's generator
    curve: Curve
    guard: Any  # dip.core.guard.Guard, or an engine's rule with the same state_dict interface
    observers: dict[str, Any]  # name -> observer with state_dict() / load_state_dict(state, device)
    device: torch.device

    def state_dict(self, seconds: float) -> dict[str, Any]:
        """Parameters, buffers and Adam state, z, every random generator's state, the curve, the guard, the
        observers, and the wall time so far."""
        return {
            **snapshot(self.net, self.optimizer), "z": self.step.z,
            "noise_gen": self.step.noise.generator.get_state(), "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            **self.curve.state_dict(), **self.guard.state_dict(), "seconds": seconds,
            "observers": {name: o.state_dict() for name, o in self.observers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put a :meth:`state_dict` back (tensors copied in place)."""
        restore(self.net, self.optimizer, state)
        self.step.z.copy_(state["z"])
        self.step.noise.generator.set_state(state["noise_gen"])
        torch.set_rng_state(state["cpu_rng"])
        if state["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.curve.load_state_dict(state)
        self.guard.load_state_dict(state)
        for name, observer in self.observers.items():
            observer.load_state_dict(state["observers"][name], self.device)
