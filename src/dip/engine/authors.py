"""The reference engine, ``dip fit --engine authors``: the authors' network in a loop written after their notebooks.

The network is the authors' own ``models.skip`` (DmitryUlyanov/deep-image-prior at commit 042e0d4), fetched by
``dip fetch`` as the manifest's ``authors_code`` dataset (sha256-verified, never committed) and imported from
there under a private package name. The loop follows the notebook named by the preset's ``authors_notebook``:

``restoration`` (``restoration.ipynb``: Table 1, Figure 7 bottom)
    z_t = z + σ·ε_t; loss ``mse(out * mask, img * mask)``; Adam. Every ``eval_every`` iterations (their
    ``show_every``) the masked PSNR p_t of the *perturbed training output* is compared with the last accepted
    one: when p_t < p_last − ``backtrack_db`` the parameters (not Adam's state, not BatchNorm's buffers) are
    copied back from the last accepted ones, and Adam still steps with the gradients of the refused state,
    as their closure does; otherwise the parameters are kept as the new accepted ones. There is no limit
    on the number of restores. The notebook shows f(z + σ·ε_last) at the end: the network after the last
    step, applied to the last perturbed input.
``inpainting`` (``inpainting.ipynb``: Figure 7 top, the region-inpainting examples)
    The same step without any backtracking; the notebook shows f(z) at the end.

Both outputs are written: ``output.png`` is f(z) after the last step (what our engine writes, so like is
compared with like, ``psnr``), and ``output_shown.png`` is what the notebook shows (``psnr_shown``). What stays
ours: z (the same U(0, input_scale) draw as our engine's, from the seed), the perturbation's generator (so a
checkpoint resumes bit for bit), the padding of sizes the network cannot take (masked out of the loss like
ours), the evaluations and the output observers (average, stopping rule), which never touch the fit.
Only fp32 is run, op by op, as the notebooks do.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from dip.core.network import SkipConfig
from dip.core.quality import psnr_known
from dip.engine.fit import Fit
from dip.engine.request import FitRequest
from dip.errors import DipError, DivergedError

DATASET = "authors_code"
PACKAGE = "dip_authors_models"  # the name their `models` package is imported under (never a bare `models`)


def load_models(root: Path, manifest: Path) -> ModuleType:
    """Verify the fetched copy of the authors' code under ``root`` against the manifest, then import its
    ``models`` package (once per process) as :data:`PACKAGE`."""
    from dip.data.fetch import verify_only
    from dip.data.manifest import load_manifest

    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    try:
        verify_only(load_manifest(manifest), root.parent, [root.name])
    except DipError as e:
        raise DipError(root, f"the authors' code is not in place ({e}); run `dip fetch --dataset {DATASET}`") from None
    init = root / "models" / "__init__.py"
    spec = importlib.util.spec_from_file_location(PACKAGE, init, submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - their code, our one-line error
        del sys.modules[PACKAGE]
        raise DipError(init, f"cannot import the authors' models package ({type(e).__name__}: {e})") from None
    return module


class NotebookBacktrack:
    """The backtracking of ``restoration.ipynb`` as it runs: on the perturbed output, parameters only.

    :meth:`check_perturbed` is called every ``eval_every`` iterations between the gradients and Adam's step.
    ``enabled`` False (``inpainting.ipynb``) accepts everything. In the fit's guard slot it answers
    :meth:`check` (the guard of f(z) evaluations) with "keep" always: their loop has no guard on f(z).
    """

    def __init__(self, backtrack_db: float, enabled: bool):
        self.backtrack_db, self.enabled = backtrack_db, enabled
        self.last: list[torch.Tensor] | None = None
        self.last_psnr = -math.inf
        self.backtracks = 0
        self.good_iteration: int | None = None

    def check(self, iteration: int, psnr_masked: float, net: nn.Module, optimizer: Any, loss: float | None) -> bool:
        """The :class:`dip.core.guard.Guard` interface, for f(z): never refuses a state."""
        return True

    def check_perturbed(self, iteration: int, psnr_masked: float, net: nn.Module) -> bool:
        """Keep the parameters (return True) or copy the last accepted ones back (return False)."""
        if not self.enabled:
            return True
        if psnr_masked - self.last_psnr < -self.backtrack_db and self.last is not None:
            with torch.no_grad():
                for saved, param in zip(self.last, net.parameters()):
                    param.copy_(saved)
            self.backtracks += 1
            return False
        self.last = [p.detach().clone() for p in net.parameters()]
        self.last_psnr, self.good_iteration = psnr_masked, iteration
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"notebook_last": self.last, "notebook_last_psnr": self.last_psnr,
                "good_iteration": self.good_iteration, "backtracks": self.backtracks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = None if not self.last else self.last[0].device
        self.last = state["notebook_last"] if device is None else [t.to(device) for t in state["notebook_last"]]
        self.last_psnr, self.backtracks = state["notebook_last_psnr"], state["backtracks"]
        self.good_iteration = state["good_iteration"]


class AuthorsFit(Fit):
    """One fit with the authors' network and their notebook's loop (see the module docstring)."""

    engine = "authors"

    def __init__(self, req: FitRequest, progress: bool | None = None, quiet: bool = False):
        if req.precision != "fp32":
            raise DipError("--precision", f"the authors' engine runs fp32 only (their notebooks), got {req.precision}")
        self.models = load_models(req.authors_code, req.manifest)
        placement = req.placement and dataclasses.replace(req.placement, cuda_graph=False)
        super().__init__(dataclasses.replace(req, cuda_graph="off", placement=placement), progress, quiet)  # op by op
        self.shown = "f(z + sigma*eps_last)" if self.guard.enabled else "f(z)"

    def build_guard(self) -> NotebookBacktrack:
        """Their backtracking (``restoration.ipynb``) or none (``inpainting.ipynb``), in the guard slot."""
        restoration = self.params["authors_notebook"] == "restoration"
        return NotebookBacktrack(self.params["backtrack_db"], enabled=restoration)  # checkpointed, counted

    def build_network(self, cfg: SkipConfig) -> nn.Module:
        """Their ``skip`` with the preset's scales, kernels, upsampling and 1x1 up convolutions (reflection
        padding, LeakyReLU, BatchNorm, strided downsampling, sigmoid: the notebooks' choices), on our z."""
        return self.models.skip(
            cfg.in_channels, cfg.out_channels, num_channels_down=list(cfg.n_down), num_channels_up=list(cfg.n_up),
            num_channels_skip=list(cfg.n_skip), filter_size_down=cfg.k_down, filter_size_up=cfg.k_up,
            filter_skip_size=cfg.k_skip, upsample_mode=cfg.upsample, downsample_mode="stride", need_sigmoid=True,
            need_bias=True, need1x1_up=cfg.up_1x1, pad="reflection", act_fun="LeakyReLU")

    def evaluate(self, it: int, loss: float | None, est: np.ndarray | None = None) -> bool:
        """At a training iteration (``loss`` given), first their backtracking on the perturbed output of its
        gradients (a restore keeps the gradients: Adam steps anyway); then our evaluation of f(z), which their
        loop never refuses (the guard slot holds :class:`NotebookBacktrack`)."""
        if loss is not None:
            pm = psnr_known(self.inputs.image, self.frame.cut(self.step.output)[0].cpu().numpy(), self.inputs.known)
            self.guard.check_perturbed(it, pm, self.net)
        return super().evaluate(it, loss, est)

    def final_estimate(self) -> np.ndarray:
        """f(z) after the last step; a non-finite one (their loop has no guard) exits 3 with nothing written."""
        est = super().final_estimate()
        if not np.isfinite(est).all():
            raise DivergedError(f"fit {self.req.out}", "the authors' loop ended on a non-finite output")
        return est

    def extra_images(self) -> dict[str, np.ndarray]:
        """``output_shown.png``: what the notebook shows at the end."""
        if not self.guard.enabled:  # inpainting.ipynb shows f(z)
            return {"output_shown.png": self.estimate()}
        with torch.no_grad():
            shown = self.step.forward(self.step.last_input)
        return {"output_shown.png": self.frame.cut(shown)[0].cpu().numpy()}
