"""What a fit leaves behind: ``output.png``, ``observed.png``, ``curve.csv`` and ``metrics.json``, in one folder.

The folder is written atomically (:func:`dip.data.atomic.atomic_directory`): a reader that finds ``metrics.json`` finds a
complete result, and a killed fit leaves nothing but a temporary sibling that the next run removes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dip
from dip.core import compute
from dip.core.averaging import OutputAverage
from dip.core.curve import Curve
from dip.core.quality import psnr, psnr_known, psnr_missing, ssim
from dip.core.stopping import VarianceStop
from dip.data.atomic import atomic_directory, write_text
from dip.data.crop import crop_record
from dip.data.images import as_chw, to_uint8, write_png
from dip.engine.request import FitRequest, Inputs
from dip.errors import DipError


@dataclass(frozen=True)
class RunRecord:
    """What a finished fit says about its run, besides the images' scores (built by ``Fit.record``)."""

    engine: str
    shown: str | None  # what the reference engine's notebook shows (output_shown.png), else None
    iterations: int  # the budget T
    output_iteration: int | None  # the iteration whose state output.png holds
    ran: int  # iterations run by this process (not counting a resumed checkpoint's)
    loop_seconds: float
    eval_seconds: float
    prior_seconds: float  # wall time of the runs this one resumed
    resumed_from: int | None
    stopped_at: int | None  # where --stop auto ended the loop
    es_iter: int | None  # the stopping rule's chosen iteration t*
    es_fired_at: int | None
    best: tuple[float, int | None]  # the curve's best (PSNR, iteration): the oracle so far
    backtracks: int
    placement: compute.Placement


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


def fit_metrics(req: FitRequest, inputs: Inputs, images: dict[str, np.ndarray], run: RunRecord) -> dict[str, Any]:
    """metrics.json of a finished fit. Every PSNR is measured on the 8-bit file as written (in float64), so
    anyone can recompute it from the PNGs: ``psnr``/``ssim`` of output.png (the final iterate: the claim),
    ``psnr_ema`` of output_ema.png, ``psnr_es`` of output_es.png, and the oracle ``psnr_best``: the best of
    every evaluation and of the final output, so never below ``psnr``."""
    final = as_chw(to_uint8(images["output.png"]))
    m: dict[str, Any] = {
        "psnr": None, "ssim": None, "psnr_best": None, "psnr_best_iter": None, "psnr_shown": None,
        "psnr_missing": None, "psnr_ema": None, "psnr_es": None, "es_iter": run.es_iter,
        "es_fired_at": run.es_fired_at, "stopped_at": run.stopped_at,
        "psnr_masked": psnr_known(as_chw(to_uint8(inputs.image)), final, inputs.known),
    }
    if inputs.gt is not None:
        gt = as_chw(to_uint8(inputs.gt))
        score = {name: psnr(gt, as_chw(to_uint8(a))) for name, a in images.items()}
        best, best_iter = max(run.best, (score["output.png"], run.output_iteration))
        m.update(psnr=score["output.png"], ssim=ssim(gt, final), psnr_missing=psnr_missing(gt, final, inputs.known),
                 psnr_best=best, psnr_best_iter=best_iter,
                 psnr_ema=score.get("output_ema.png"), psnr_es=score.get("output_es.png"),
                 psnr_shown=score.get("output_shown.png"))
    c, h, w = inputs.image.shape
    p = req.params
    m.update({
        "iterations": run.iterations, "output_iteration": run.output_iteration,
        "ema_weight": p["ema_weight"], "es_alpha": p["es_alpha"], "es_patience": p["es_patience"],
        "seconds_per_iter": run.loop_seconds / max(run.ran, 1),
        "eval_fraction": run.eval_seconds / run.loop_seconds if run.loop_seconds > 0 else 0.0,
        "wall_seconds": run.prior_seconds + run.loop_seconds, "backtracks": run.backtracks, "seed": req.seed,
        "device": run.placement.device.type, "device_name": run.placement.device_name, "precision": req.precision,
        "channels_last": run.placement.channels_last, "cuda_graph": run.placement.cuda_graph,
        "threads": run.placement.threads,
        "torch": torch.__version__, "dip_version": dip.__version__, "preset": req.preset, "params": req.params,
        "height": h, "width": w, "channels": c, "crop": crop_record(inputs.crop), "inputs": inputs.hashes,
        "tags": req.tags, "resumed_from": run.resumed_from, "engine": run.engine,
        "shown": run.shown,
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
