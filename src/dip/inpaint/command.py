"""`dip inpaint`: restore a person's own image from the files they have.

The steps around the fit (which is :mod:`dip.engine.fit`, unchanged), in :func:`run`, from the options parsed once
(:class:`dip.inpaint.options.InpaintOptions`) and the device resolved once:

1. read the image (8 or 16 bits, EXIF orientation applied) and the mask as people draw it (:mod:`dip.inpaint.drawn_mask`:
   which tone is the damage, soft edges; said in one line each);
2. with ``--max-side N``, work on a copy whose longer side is N (LANCZOS for the image, nearest for the mask);
3. with ``--preset auto`` (the default), pick the preset for the mask's damage and the device
   (:mod:`dip.inpaint.autopreset`) and say which and why in one line;
4. estimate the fit's memory and refuse, in one line, what the device cannot hold (:mod:`dip.inpaint.fit_memory`; a
   first check from the image's header comes before step 1, so a photo of any size is refused in milliseconds);
5. time a short probe of the fit and print the estimated run time, with the faster choices when it is long
   (:mod:`dip.inpaint.time_estimate`; the probe is thrown away and does not change the result);
6. fit the prepared copy (written beside the output, removed afterwards);
7. bring the fill back to the original size (LANCZOS) and, unless ``--no-keep-known``, put every known pixel
   of the original back unchanged; write 16 bits when the image had 16.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from dip.core import compute
from dip.data.crop import CropBox, crop_size
from dip.data.images import bomb_limit_lifted, read_picture, write_png
from dip.engine.request import FitRequest
from dip.errors import DipError
from dip.inpaint.drawn_mask import read_drawn_mask
from dip.inpaint.fit_memory import check_before_decoding, check_fit_memory, reduced_size
from dip.inpaint.options import InpaintOptions

if TYPE_CHECKING:  # pragma: no cover
    from dip.inpaint import time_estimate

log = logging.getLogger("dip.inpaint.command")


@dataclass
class Prepared:
    """The inputs as read (``pixels``, ``known``, ``bits``), the copy the fit works on (``work_*``), and how the
    mask was read (``notes``, one line each)."""

    pixels: np.ndarray
    known: np.ndarray
    bits: int
    work_pixels: np.ndarray
    work_known: np.ndarray
    notes: tuple[str, ...] = ()

    @property
    def reduced(self) -> bool:
        return self.work_known.shape != self.known.shape


def resize_image(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, H, W) float -> (C, h, w) with ``size`` = (h, w): LANCZOS on each channel in float ("F" mode), clipped."""
    h, w = size
    out = [np.asarray(Image.fromarray(ch).resize((w, h), Image.Resampling.LANCZOS)) for ch in pixels]
    return np.clip(np.stack(out), 0.0, 1.0).astype(np.float32)


def resize_mask(known: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool -> (h, w) bool, nearest neighbour (a pixel stays known or missing, never blends)."""
    h, w = size
    small = Image.fromarray(known.astype(np.uint8) * 255).resize((w, h), Image.Resampling.NEAREST)
    return np.asarray(small) > 0


def prepare(image: Path, mask: Path, threshold: float | None, max_side: int | None,
            convention: str = "auto") -> Prepared:
    """Read and validate image and mask; make the working copy for ``max_side``."""
    picture = read_picture(image, named=True)  # the person's own photo: no decompression-bomb guard
    c, h, w = picture.pixels.shape
    drawn = read_drawn_mask(mask, (h, w), convention, threshold)
    known = drawn.known
    size = reduced_size(h, w, max_side)
    if size == (h, w):
        return Prepared(picture.pixels, known, picture.bits, picture.pixels, known, drawn.lines)
    work_known = resize_mask(known, size)
    if not work_known.any():
        raise DipError(mask, f"no known pixel is left at --max-side {max_side}; use a larger --max-side")
    return Prepared(picture.pixels, known, picture.bits, resize_image(picture.pixels, size), work_known, drawn.lines)


def check_device_memory(req: FitRequest, prepared: Prepared, device: torch.device) -> None:
    """Refuse (one line, exit 2, before anything is allocated) a fit the device's memory cannot hold."""
    c, h, w = prepared.work_pixels.shape
    check_fit_memory(req.image, [req.params], c, h, w, req.crop, device)


def write_work_inputs(folder: Path, prepared: Prepared) -> tuple[Path, Path]:
    """The working copy as files for the fit (the image in the input's bit depth, the mask as 0/255)."""
    folder.mkdir(parents=True, exist_ok=True)
    image, mask = folder / "image.png", folder / "mask.png"
    write_png(image, prepared.work_pixels, bits=prepared.bits)
    write_png(mask, np.where(prepared.work_known, 255, 0).astype(np.uint8))
    return image, mask


def chosen_output(m: dict, average: bool, stop: str) -> tuple[str, str]:
    """Which of the fit's images ``dip inpaint --holdout 0`` writes (``--stop auto``: ES-EMV's output; else
    ``--average``: the output average; else the final iterate), and what it is, in words."""
    if stop == "auto":
        fired = m["es_fired_at"]
        return "output_es.png", (
            f"the output at iteration {m['es_iter']}, where the stopping rule fired at {fired}" if fired
            else f"the minimum-variance output at iteration {m['es_iter']} (the rule did not fire within "
                 f"{m['iterations']} iterations)")
    if average:
        return "output_ema.png", f"the average of the outputs (weight {m['ema_weight']})"
    return "output.png", f"the final iterate ({m['iterations']} iterations)"


def compose(prepared: Prepared, output: np.ndarray, crop: CropBox | None, keep_known: bool) -> np.ndarray:
    """The picture to write: the fit's ``output`` at the original size (LANCZOS when reduced), with the known
    pixels of the original put back unless ``keep_known`` is False. ``crop`` is the fit's crop box, if any."""
    pixels, known = prepared.pixels, prepared.known
    if crop is not None:
        pixels, known = crop.cut(pixels), crop.cut(known)
    if output.shape[1:] != known.shape:
        output = resize_image(output, known.shape)
    if not keep_known:
        return output
    return np.where(known[None], pixels, output).astype(np.float32)


def clean(*folders: Path) -> None:
    """Remove the fit's temporary folders."""
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def announce_eta(req: FitRequest, prepared: Prepared, auto_reduced: bool,
                 device: torch.device) -> "time_estimate.Estimate":
    """Probe the fit's speed, log the estimated run time (and faster choices when it is long); return it."""
    from dip.inpaint.time_estimate import estimate, eta_lines, probe_fit

    size = crop_size(prepared.work_known.shape, req.crop)
    probe = probe_fit(req)
    scale = 1.0 if req.crop else prepared.known.size / prepared.work_known.size  # the picture is written full size
    plan = estimate(probe, req.params["iterations"], req.params["eval_every"], scale)
    for line in eta_lines(probe, plan, req.params["iterations"], device.type, size, auto_reduced, req.stop_early):
        log.info("%s", line)
    return plan


def run(opts: InpaintOptions) -> dict[str, Any]:
    """`dip inpaint` (the module docstring's steps), from its parsed options. The device is resolved once, here:
    the memory checks, auto's choice, the time estimate and the fit all use it. Returns the fit's metrics."""
    from dip.engine.fit import Fit
    from dip.inpaint.autopreset import pick

    opts.check()
    out = opts.output
    device = compute.pick_device(opts.fit.device)
    check_before_decoding(opts, device)  # a photo too large for the memory is refused from its header
    prepared = prepare(opts.image, opts.mask, opts.mask_threshold, opts.max_side, opts.mask_convention)
    choice = pick(opts.fit.preset, opts.fit.precision, prepared.work_known, device.type)
    budget = {"iterations": choice.iterations} if choice.iterations is not None else None  # under the user's
    work, inputs = out.with_name(f".{out.name}.fit"), out.with_name(f".{out.name}.inputs")
    req = opts.fit.request(choice.preset, choice.precision, budget, image=opts.image, mask=opts.mask, gt=None,
                           out=work, write_observed=False, stop_early=opts.stop == "auto", holdout=opts.holdout,
                           holdout_patience=opts.holdout_patience,
                           holdout_watch="average" if opts.average else "estimate",
                           checkpoint_dir=opts.fit.checkpoint_dir or out.with_name(f".{out.name}.ckpt"))
    check_device_memory(req, prepared, device)  # a refusal is the only line: the choices are said after it
    for line in prepared.notes:
        log.info("%s", line)
    if choice.auto is not None:
        log.info("%s", choice.auto.line())
    try:
        req.image, req.mask = write_work_inputs(inputs, prepared)  # the fit's checkpoint hashes these
        req.placement = compute.place(device, req.threads, req.precision, req.memory_format, req.cuda_graph,
                                      req.deterministic)  # once, for the probe and the fit
        with bomb_limit_lifted():  # the working copy of the person's photo, however large
            plan = announce_eta(req, prepared, choice.reduced, device)
            fit = Fit(req, progress=opts.fit.progress)
            fit.progress.expect(plan.loop, plan.after, plan.before)  # said again when the running rate moves it by a third
            m = fit.run()
        if fit.validation is not None:  # DIP, the classical fill or a blend, chosen on held-out pixels
            from dip.inpaint.choice import decide

            output, what = decide(fit)
        else:
            chosen, what = chosen_output(m, opts.average, opts.stop)
            output = fit.images[chosen]
        result = compose(prepared, output, fit.inputs.crop, opts.keep_known)
        write_png(out, result, bits=prepared.bits)
    finally:
        clean(work, inputs)
    h, w = prepared.work_known.shape
    how = [f"{prepared.bits}-bit", f"preset {req.preset}",
           "known pixels kept" if opts.keep_known else "raw network output"]
    if prepared.reduced:
        how.append(f"fitted at {w}x{h} and upsampled")
    print(f"wrote {out} ({', '.join(how)}): {what}")
    return m
