"""Held-out known pixels: a validation set for inpainting that needs no ground truth (``dip inpaint`` only).

Self-validation for single-image priors (Li et al., BMVC 2021): hide part of the measurements from the loss and
watch how well the fit predicts them. For inpainting the measurements are the known pixels, and predicting
pixels the fit did not see is exactly the task. So a seeded fraction ``fraction`` of the known pixels is held out:
they are removed from the known mask *before* anything else sees it (the loss, the guard's masked PSNR, the
checkpoint's inputs), and at every evaluation the PSNR on them of what the rule *watches*, ``psnr_val``, is added
to the curve: the estimate f_θ(z) (``watch="estimate"``) or the output average a_t (``watch="average"``,
:mod:`dip.core.averaging`; the better rule in docs/stopping.md's study, ``dip inpaint``'s default). The rule
keeps the watched image of the best ``psnr_val`` and *fires* when ``patience`` iterations have passed without a
better one.

The held-out pixels have the shape of the damage, not of scattered pixels: an isolated known pixel is easy for
any interpolation, and a validation set of them would favour smooth classical fills over the network. And they
lie next to the damage, not anywhere: the content around the damage is what the fill must predict (copies
placed anywhere in the image told DIP from the biharmonic fill wrongly on barbara, docs/stopping.md).
:func:`holdout_mask` places copies of the mask's own missing regions (connected components, drawn at random)
right beside the region copied (:func:`beside`) until ``fraction`` of the known pixels is covered; a region
larger than what is left of the budget is cut to a square window of it. Table 1 fits never hold pixels out (they are exactly the paper's fit).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from dip.core.quality import psnr, psnr_known
from dip.data.images import as_chw, to_uint8

SEED_OFFSET = 2_000_003  # the held-out pixels are drawn with seed + this (fixed: it names the validation set)


def holdout_mask(known: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The held-out pixels (an (H, W) bool subset of ``known``): about ``fraction`` of the known pixels, in
    copies of the missing regions placed beside them, seeded (scattered pixels when nothing is missing)."""
    rng = np.random.default_rng(seed + SEED_OFFSET)
    h, w = known.shape
    budget = round(fraction * float(known.sum()))
    held = np.zeros_like(known, dtype=bool)
    labels, count = ndimage.label(~known)
    if count == 0 or budget == 0:  # nothing missing: no shape to copy, hold out scattered pixels
        flat = np.flatnonzero(known)
        held.flat[rng.choice(flat, size=min(budget, flat.size), replace=False)] = True
        return held
    boxes, total = ndimage.find_objects(labels), 0
    for _ in range(50 * count + 1000):
        left = budget - total
        if left <= 0:
            break
        k = int(rng.integers(count))
        region = labels[boxes[k]] == k + 1
        top, lft = boxes[k][0].start, boxes[k][1].start
        if region.sum() > 2 * left:  # too big for the rest of the budget: a square window of it
            side = max(1, math.isqrt(2 * left))
            ys, xs = np.nonzero(region)
            i = int(rng.integers(ys.size))
            y0, x0 = max(0, ys[i] - side // 2), max(0, xs[i] - side // 2)
            region = region[y0:y0 + side, x0:x0 + side]
            top, lft = top + y0, lft + x0
        top, lft = beside(rng, top, lft, region.shape, (h, w))
        rh, rw = region.shape
        window = (slice(top, top + rh), slice(lft, lft + rw))
        added = region & known[window] & ~held[window]
        held[window] |= added
        total += int(added.sum())
    return held


def beside(rng: np.random.Generator, top: int, lft: int, shape: tuple[int, int], size: tuple[int, int]
           ) -> tuple[int, int]:
    """A place right next to a region at (top, lft): shifted up, down, left or right by its own extent plus a gap
    of 1-3 pixels (kept inside the image), so the copy covers the same kind of content as the damage itself."""
    (rh, rw), (h, w) = shape, size
    gap, side = int(rng.integers(1, 4)), int(rng.integers(4))
    dy, dx = [(-(rh + gap), 0), (rh + gap, 0), (0, -(rw + gap)), (0, rw + gap)][side]
    return min(max(top + dy, 0), h - rh), min(max(lft + dx, 0), w - rw)


WATCHED = {"estimate": "estimate", "average": "output average"}  # watch -> what it is, in words


class Validation:
    """The held-out pixels of one fit, ``psnr_val`` at every evaluation, and the watched image of its best value."""

    def __init__(self, image: np.ndarray, held: np.ndarray, patience: int, watch: str = "estimate"):
        if watch not in WATCHED:
            raise ValueError(f"Validation: watch must be one of {', '.join(WATCHED)}, got {watch!r}")
        self.image, self.held, self.patience, self.watch = image, held, patience, watch
        self.watched = WATCHED[watch]
        self.best = (-math.inf, -1)  # (psnr_val, iteration)
        self.best_estimate: np.ndarray | None = None
        self.fired_at: int | None = None

    @classmethod
    def attach(cls, inputs: Any, fraction: float, seed: int, patience: int, watch: str = "estimate"
               ) -> Validation | None:
        """Hold out ``fraction`` of ``inputs.known`` (removed from it, in place of the attribute); None for 0."""
        if not fraction:
            return None
        held = holdout_mask(inputs.known, fraction, seed)
        inputs.known = np.ascontiguousarray(inputs.known & ~held)
        return cls(inputs.image, held, patience, watch)

    def observe(self, iteration: int, output: Any) -> None:
        """Nothing per iteration: the rule watches the evaluations (:meth:`evaluate`)."""

    def evaluate(self, iteration: int, estimate: np.ndarray) -> float:
        """``psnr_val`` of the watched image ``estimate`` after ``iteration`` steps; keeps it when best, fires after
        the patience."""
        value = psnr_known(self.image, estimate, self.held)
        if value > self.best[0]:
            self.best, self.best_estimate = (value, iteration), estimate.copy()
        elif self.fired_at is None and iteration - self.best[1] >= self.patience:
            self.fired_at = iteration
        return value

    def fired(self) -> int | None:
        return self.fired_at

    def images(self) -> dict[str, np.ndarray]:
        return {} if self.best_estimate is None else {"output_val.png": self.best_estimate}

    def metrics(self, gt: np.ndarray | None) -> dict[str, Any]:
        """metrics.json's validation keys (``psnr_valstop``: output_val.png against the ground truth, if any)."""
        scored = None
        if gt is not None and self.best_estimate is not None:
            scored = psnr(as_chw(to_uint8(gt)), as_chw(to_uint8(self.best_estimate)))
        return {"holdout_pixels": int(self.held.sum()), "val_watch": self.watch, "psnr_val": self.best[0],
                "val_iter": self.best[1],
                "val_fired_at": self.fired_at, "val_patience": self.patience, "psnr_valstop": scored}

    def state_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint (loaded with ``weights_only=True``): numbers, and the best estimate as a
        tensor (bit for bit the array)."""
        psnr, it = self.best
        estimate = None if self.best_estimate is None else torch.from_numpy(np.ascontiguousarray(self.best_estimate))
        return {"best": [float(psnr), None if it is None else int(it)], "best_estimate": estimate,
                "fired_at": None if self.fired_at is None else int(self.fired_at)}

    def load_state_dict(self, state: dict[str, Any], device: Any = None) -> None:
        estimate = state["best_estimate"]
        self.best, self.fired_at = tuple(state["best"]), state["fired_at"]
        self.best_estimate = None if estimate is None else estimate.numpy()


def check_options(fraction: float, patience: int) -> None:
    """Refuse (one line) a held-out fraction or patience that cannot work (dip inpaint's --holdout options)."""
    from dip.errors import DipError

    if not 0.0 <= fraction <= 0.5:
        raise DipError("--holdout", f"must be in [0, 0.5], got {fraction}")
    if patience < 1:
        raise DipError("--holdout-patience", f"must be at least 1, got {patience}")
