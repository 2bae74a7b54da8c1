"""`dip inpaint`'s memory refusals: one line (exit 2) with a ``--max-side`` that fits, before anything is allocated.

Two checks, the same line:

- :func:`check_before_decoding`, from the image's header only, before its pixels are decoded: a photo of any
  size, even beyond PIL's decompression-bomb limit, is measured in milliseconds. With ``--preset auto`` the
  preset is not known yet (it depends on the mask), so the need is that of the leanest preset auto could pick
  on this device, and the suggested ``--max-side`` one that every such preset fits;
- :func:`check_fit_memory` with the preset chosen, on the working copy, as before.

The need is :func:`dip.inpaint.memory.fit_bytes` (counted on the meta device); the suggestion is the largest multiple
of 64 below the image's longer side whose fit the memory holds, found by bisection (the need grows with the side).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dip.data.crop import crop_size
from dip.data.images import picture_size
from dip.inpaint.memory import check_memory, fit_bytes

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from dip.engine.request import FitOptions
    from dip.inpaint.options import InpaintOptions


def reduced_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """(h, w) with the longer side ``max_side`` and the aspect kept; the size itself when already small enough."""
    if max_side is None or max(height, width) <= max_side:
        return height, width
    s = max_side / max(height, width)
    return max(1, round(height * s)), max(1, round(width * s))


_NEEDS: dict[tuple[str, int, int, int], int] = {}


def need(params: dict, channels: int, height: int, width: int) -> int:
    """:func:`dip.inpaint.memory.fit_bytes`, remembered (the checks ask for the same sizes again)."""
    key = (json.dumps(params, sort_keys=True, default=str), channels, height, width)
    if key not in _NEEDS:
        _NEEDS[key] = fit_bytes(params, channels, height, width)
    return _NEEDS[key]


def suggest_side(candidates: list[dict], channels: int, height: int, width: int, have: int) -> int | None:
    """The largest --max-side (a multiple of 64, below the image's longer side) at which the fit of every preset
    in ``candidates`` fits in the memory ``have``; None when not even 64 does."""
    def fits(k: int) -> bool:
        size = reduced_size(height, width, 64 * k)
        return all(need(p, channels, *size) <= have for p in candidates)

    lo, hi = 0, (max(height, width) - 1) // 64  # the answer is 64 * k for a k in [lo, hi]; k = 0: none
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return 64 * lo if lo >= 1 else None


def check_fit_memory(subject: Any, candidates: list[dict], channels: int, height: int, width: int,
                     crop: int | None, device: torch.device) -> None:
    """Refuse (:func:`dip.inpaint.memory.check_memory`'s one line) when not even the leanest of ``candidates`` fits at
    ``height`` x ``width`` (cropped to ``crop``) on ``device``, naming a ``--max-side`` at which all of them fit."""
    h, w = crop_size((height, width), crop)
    lean = min(candidates, key=lambda p: need(p, channels, h, w))

    def way_out(have: int) -> str:
        if crop:
            return "use a smaller --crop, or a GPU with more memory"
        side = suggest_side(candidates, channels, h, w, have)
        return (f"use --max-side {side} to fit a smaller copy and upsample the fill, or a GPU with more memory"
                if side else "use a machine or GPU with more memory")

    check_memory(subject, lean, channels, h, w, device, way_out)


def candidate_params(options: FitOptions, device: torch.device) -> list[dict]:
    """The resolved parameters of ``--preset`` (with every override of the command line), or, for ``auto``, of
    each preset auto could pick on ``device``."""
    from dip.inpaint.autopreset import settings

    names = [options.preset]
    if options.preset == "auto":
        names = sorted(set(settings()["devices"][device.type]["presets"].values()))
    options.check()
    return [options.params(name) for name in names]


def check_before_decoding(options: InpaintOptions, device: torch.device) -> None:
    """The memory check from IMAGE's header, before its pixels (or the mask's) are decoded (module docstring)."""
    height, width, channels = picture_size(options.image)
    h, w = reduced_size(height, width, options.max_side)
    check_fit_memory(options.image, candidate_params(options.fit, device), channels, h, w, options.fit.crop, device)
