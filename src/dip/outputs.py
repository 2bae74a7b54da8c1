"""What a fit leaves behind: ``output.png``, ``observed.png``, ``curve.csv`` and ``metrics.json``, in one folder.

The folder is written atomically (:func:`dip.atomic.atomic_directory`): a reader that finds ``metrics.json`` finds a
complete result, and a killed fit leaves nothing but a temporary sibling that the next run removes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

import dip
from dip import runtime
from dip.atomic import atomic_directory, write_text
from dip.averaging import OutputAverage
from dip.curve import Curve
from dip.errors import DipError
from dip.io import to_uint8, write_png
from dip.metrics import psnr, psnr_known, ssim
from dip.request import FitRequest, Inputs
from dip.stopping import VarianceStop

if TYPE_CHECKING:  # pragma: no cover
    from dip.fit import Fit


def check_out_dir(out: Path) -> None:
    """Refuse an output path that is a file or cannot be written, before any work."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not out.is_dir():
        raise DipError(out, "output path exists and is not a directory")
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise DipError(out, "output directory is not writable")


def as_chw(u8: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 -> (C, H, W) float64 in [0, 1]."""
    a = u8.astype(np.float64) / 255.0
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def observer_images(average: OutputAverage, stopping: VarianceStop,
                    es_estimate: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The output average (``output_ema.png``) and the early-stopped output (``output_es.png``): ``es_estimate``,
    the unperturbed f_θ(z) at the rule's iteration t*, or, for a rule without parameters, x_{t*}."""
    images = {}
    if average.average is not None:
        images["output_ema.png"] = average.average[0].cpu().numpy()
    _, es_output = stopping.result()
    if es_estimate is not None:
        images["output_es.png"] = es_estimate
    elif es_output is not None:
        images["output_es.png"] = es_output[0].cpu().numpy()
    return images


def fit_metrics(fit: "Fit", images: dict[str, np.ndarray], ran: int, loop_seconds: float) -> dict[str, Any]:
    """metrics.json of a finished fit. Every PSNR is measured on the 8-bit file as written (in float64), so
    anyone can recompute it from the PNGs: ``psnr``/``ssim`` of output.png (the final iterate: the claim),
    ``psnr_ema`` of output_ema.png, ``psnr_es`` of output_es.png, and the oracle ``psnr_best``: the best of
    every evaluation and of the final output, so never below ``psnr``."""
    inputs, req = fit.inputs, fit.req
    final = as_chw(to_uint8(images["output.png"]))
    es_iter, _ = fit.stopping.result()
    m: dict[str, Any] = {
        "psnr": None, "ssim": None, "psnr_best": None, "psnr_best_iter": None, "psnr_shown": None,
        "psnr_ema": None, "psnr_es": None, "es_iter": es_iter if es_iter >= 0 else None,
        "es_fired_at": fit.stopping.fired(), "stopped_at": fit.stopped_at,
        "psnr_masked": psnr_known(as_chw(to_uint8(inputs.image)), final, inputs.known),
    }
    if inputs.gt is not None:
        gt = as_chw(to_uint8(inputs.gt))
        score = {name: psnr(gt, as_chw(to_uint8(a))) for name, a in images.items()}
        best, best_iter = max(fit.curve.best, (score["output.png"], fit.output_iteration))
        m.update(psnr=score["output.png"], ssim=ssim(gt, final), psnr_best=best, psnr_best_iter=best_iter,
                 psnr_ema=score.get("output_ema.png"), psnr_es=score.get("output_es.png"),
                 psnr_shown=score.get("output_shown.png"))
    c, h, w = inputs.image.shape
    p = req.params
    m.update({
        "iterations": fit.total, "output_iteration": fit.output_iteration,
        "ema_weight": p["ema_weight"], "es_alpha": p["es_alpha"], "es_patience": p["es_patience"],
        "seconds_per_iter": loop_seconds / max(ran, 1),
        "eval_fraction": fit.eval_seconds / loop_seconds if loop_seconds > 0 else 0.0,
        "wall_seconds": fit.prior_seconds + loop_seconds, "backtracks": fit.guard.backtracks, "seed": req.seed,
        "device": fit.device.type, "device_name": runtime.device_name(fit.device), "precision": req.precision,
        "channels_last": fit.channels_last, "cuda_graph": fit.cuda_graph, "threads": fit.threads,
        "torch": torch.__version__, "dip_version": dip.__version__, "preset": req.preset, "params": req.params,
        "height": h, "width": w, "channels": c, "crop": inputs.crop, "inputs": inputs.hashes, "tags": req.tags,
        "resumed_from": fit.resumed_from, "engine": fit.engine,
        "shown": fit.shown,
    })
    return m


def write_fit_outputs(req: FitRequest, inputs: Inputs, images: dict[str, np.ndarray], curve: Curve,
                      metrics: dict[str, Any]) -> None:
    """Write the fit's folder atomically, metrics.json last; one-line error when the disk refuses.

    ``images``: file name -> (C, H, W) float image (output.png, output_ema.png, output_es.png)."""
    try:
        with atomic_directory(req.out) as tmp:
            for name, image in images.items():
                write_png(tmp / name, to_uint8(image))
            if req.write_observed:
                write_png(tmp / "observed.png", inputs.observed)
            if curve.rows:
                write_text(tmp / "curve.csv", curve.csv())
            write_text(tmp / "metrics.json", json.dumps(metrics, indent=2, default=_json_default) + "\n")
    except OSError as e:  # disk full, read-only file system: one clear line, nothing half-written
        raise DipError(req.out, f"cannot write the results ({e.strerror or e})") from None


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")
