"""`dip baseline`: the classical fill of one fit's inputs, scored like the fit, in a folder like the fit's.

The pipeline runs one per (task, image, seed) beside the fit (workflow/rules/baseline.smk), on exactly the same
image, mask and crop: the inputs are read and cropped by :func:`dip.engine.request.load_inputs`, the fit's own reader
(the crop box: :class:`dip.data.crop.CropBox`, with the same check of ``--crop``/``--crop-at`` as ``dip fit``).
The fill is :func:`dip.core.classical.fill` (biharmonic) of the observation (missing pixels zeroed, so the ground truth
cannot leak in). The folder, written atomically like a fit's (:func:`dip.data.atomic.atomic_directory`):

* ``output.png``: the filled image (8-bit), known pixels unchanged;
* ``metrics.json``: ``psnr``, ``ssim`` and ``psnr_missing`` (PSNR on the missing pixels alone) with a fit's
  names and definitions (measured on the 8-bit file as written, against the ground truth), ``wall_seconds``
  (the fill alone), ``mask_sha256`` (the report refuses a baseline whose mask is not its fit's), ``inputs``,
  ``crop``, ``tags`` and ``engine: classical``.

Deterministic: the same inputs give the same ``output.png`` and the same metrics, bit for bit (all but the time).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import skimage

import dip
from dip.cliconv import Parser, output_option, parse_corner, positional_alias, require_later
from dip.core.classical import METHODS, fill
from dip.core.quality import psnr, psnr_missing, ssim
from dip.data.atomic import atomic_directory, check_out_dir
from dip.data.crop import check_crop_options, crop_record
from dip.data.images import as_chw, to_uint8, write_png
from dip.engine.request import FitRequest, Inputs, load_inputs
from dip.errors import DipError

# No torch here (dip.engine.outputs imports it): a baseline job starts in a second and needs well under 1 GB.

ENGINE = "classical"  # metrics.json's engine: `dip report --fits` refuses these folders, --baselines takes only them


def request(image: Path, mask: Path | None, out: Path, crop: int | None = None,
            crop_at: tuple[int, int] | None = None, tags: dict[str, str] | None = None) -> FitRequest:
    """The FitRequest whose inputs the baseline reads: the fit's image, mask, ground truth (the image) and crop."""
    check_crop_options(crop, crop_at)
    return FitRequest(image=image, mask=mask, gt=image, out=out, preset=ENGINE, params={}, crop=crop,
                      crop_at=crop_at, tags=dict(tags or {}))


def baseline_metrics(inputs: Inputs, output: np.ndarray, method: str, seconds: float, seed: int | None,
                     tags: dict[str, str]) -> dict[str, Any]:
    """metrics.json of a baseline: the fit's metric names, scored on the 8-bit ``output`` as written."""
    gt = as_chw(to_uint8(inputs.gt))
    final = as_chw(output)
    c, h, w = inputs.image.shape
    mask = inputs.hashes.get("mask")
    return {
        "engine": ENGINE, "method": method,
        "psnr": psnr(gt, final), "ssim": ssim(gt, final), "psnr_missing": psnr_missing(gt, final, inputs.known),
        "missing_fraction": float(1.0 - inputs.known.mean()), "wall_seconds": seconds, "seed": seed,
        "mask_sha256": mask["sha256"] if mask else None,
        "height": h, "width": w, "channels": c, "crop": crop_record(inputs.crop), "inputs": inputs.hashes,
        "tags": tags, "dip_version": dip.__version__, "scikit_image": skimage.__version__,
    }


def run_baseline(req: FitRequest, method: str = "biharmonic", seed: int | None = None) -> dict[str, Any]:
    """Fill the request's inputs with ``method``, write ``output.png`` and ``metrics.json`` into ``req.out``."""
    if method not in METHODS:
        raise DipError("--method", f"unknown classical fill {method!r} (one of {', '.join(METHODS)})")
    check_out_dir(req.out)
    inputs = load_inputs(req)
    if inputs.known.all():
        where = " inside the crop" if req.crop else ""
        raise DipError(req.mask, f"has no missing pixel{where}: nothing to fill")
    start = time.perf_counter()
    filled = fill(inputs.observed, inputs.known, method)
    seconds = time.perf_counter() - start
    output = to_uint8(filled)
    m = baseline_metrics(inputs, output, method, seconds, seed, req.tags)
    try:
        with atomic_directory(req.out) as tmp:
            write_png(tmp / "output.png", output)
            (tmp / "metrics.json").write_text(json.dumps(m, indent=2, allow_nan=False) + "\n")
    except OSError as e:  # disk full, read-only file system: one line, nothing half-written
        raise DipError(req.out, f"cannot write the results ({e.strerror or e})") from None
    return m


def _tag(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value


def parser() -> Parser:
    """`dip baseline IMAGE MASK -o OUT` (``--image``/``--mask``, the old spellings, still work, hidden, as in dip fit)."""
    p = Parser(prog="dip baseline", description="The classical fill (no learning, no GPU) of the missing pixels of "
                                                "IMAGE x MASK, scored against IMAGE like a `dip fit` of the same "
                                                "inputs: output.png and metrics.json in -o/--output.")
    p.add_argument("image", type=Path, nargs="?", metavar="IMAGE",
                   help="the clean image (ground truth); the fill sees IMAGE x MASK")
    p.add_argument("mask", type=Path, nargs="?", metavar="MASK",
                   help="right after IMAGE; 255 (or 1) = known, 0 = missing (the fit's mask)")
    positional_alias(p, "--image", "image", type=Path)  # the old spellings, as dip fit keeps them (hidden)
    positional_alias(p, "--mask", "mask", type=Path)
    require_later(p, "image", "IMAGE")
    require_later(p, "mask", "MASK")
    output_option(p, "output directory")
    p.add_argument("--method", default="biharmonic", choices=METHODS, help="the fill (default: %(default)s)")
    p.add_argument("--crop", type=int, help="fill an NxN crop, as `dip fit --crop` (central unless --crop-at)")
    p.add_argument("--crop-at", type=parse_corner, metavar="TOP,LEFT", help="top-left corner of the --crop window")
    p.add_argument("--seed", type=int, help="the seed of the fit this baseline stands beside (recorded only: the "
                                            "fill has no randomness; the mask is that seed's)")
    p.add_argument("--tag", type=_tag, action="append", default=[], metavar="KEY=VALUE",
                   help="recorded in metrics.json under tags (the pipeline records profile, task, image)")
    return p


def main(argv: list[str] | None = None) -> int:
    """`dip baseline`."""
    args = parser().parse_args(argv)
    req = request(args.image, args.mask, args.output, args.crop, args.crop_at, dict(args.tag))
    m = run_baseline(req, args.method, args.seed)
    print(f"{args.output}: {m['method']} fill, psnr {m['psnr']:.2f} dB, ssim {m['ssim']:.4f}, missing pixels "
          f"{m['psnr_missing']:.2f} dB, {m['wall_seconds']:.2f} s")
    return 0
