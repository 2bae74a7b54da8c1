"""How `dip inpaint` reads a mask as people draw it (issue 20, point 6).

A drawn mask has two tones: black and white, or, when it has transparency, transparent and opaque (an eraser, or
strokes on an empty layer). Which tone is the damage differs between tools: LaMa, IOPaint and OpenCV's
``inpaint`` fill in the white (non-zero) pixels; the paper's data and ``dip mask`` keep the white ones. So:

1. each pixel's tone: exactly black or white; or, for soft edges (anti-aliased brushes and text, JPEG), the
   tone at half, said in one line. A mask whose pixels are mostly far from both tones (a photo, a gradient) is
   refused; ``--mask-threshold T`` sets the cut by hand (values >= T are white) and accepts any mask;
2. which tone is the damage: ``--mask-convention white-missing`` (white, or opaque, = fill in) or
   ``white-known`` (white = keep); ``auto`` reads the tone covering at most ``damage_max_fraction`` of the mask
   (``dip/auto.yaml``) as the damage, says so and why, and refuses, naming the flag, when both tones cover more:
   that would be a guess, and a wrong guess fills in most of the photo.

The pipeline's masks keep their exact reading (:func:`dip.data.images.read_mask`, 255 = known): this module is only for
``dip inpaint``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from dip.data.images import _pixels, check_channels_agree
from dip.errors import DipError
from dip.inpaint.autopreset import settings

CONVENTIONS = ("auto", "white-missing", "white-known")
TOOLS = "as LaMa, IOPaint and OpenCV read masks"


@dataclass(frozen=True)
class DrawnMask:
    """The known pixels (True = keep) and what was decided, in one line each (``dip inpaint`` logs them)."""

    known: np.ndarray
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Tones:
    """Each pixel's tone (True: white, or opaque), the tones' names, and a line when soft edges were cut at half."""

    white: np.ndarray
    names: tuple[str, str]  # (the white tone, the black tone): ("white", "black") or ("opaque", "transparent")
    note: str | None


def read_tones(path: str | os.PathLike, shape: tuple[int, int], threshold: float | None = None) -> Tones:
    """The two tones of the mask at ``path`` (module docstring, step 1), checked against the image size."""
    a, white, _ = _pixels(path, named=True)  # the person's own file: no decompression-bomb guard
    if a.shape[:2] != tuple(shape):
        raise DipError(path, f"mask is {a.shape[1]}x{a.shape[0]} but the image is {shape[1]}x{shape[0]}")
    alpha = a.shape[2] in (2, 4) and a[..., -1].min() < white
    values = a[..., -1:] if alpha else a[..., :3] if a.shape[2] >= 3 else a[..., :1]
    names = ("opaque", "transparent") if alpha else ("white", "black")
    note = None
    if threshold is not None:
        sides = values >= threshold * (257 if white == 65535 else 1)
    elif ((values == 0) | (values == white)).all() or ((values == 0) | (values == 1)).all():
        sides = values > 0  # exactly two-toned (a 0/1 mask's 1 is white)
    else:
        near = float(((values <= white / 4) | (values >= white * 3 / 4)).mean())
        if near < settings()["mask"]["two_tone_min_fraction"]:
            raise DipError(path, f"not a two-toned mask: only {100 * near:.0f}% of its pixels are near {names[1]} or "
                                 f"{names[0]} (a photo or a gradient?); paint the damage in one tone on another, or "
                                 "give --mask-threshold T (values >= T count as white)")
        soft = float(((values > 0) & (values < white)).any(axis=2).mean())
        sides = values >= (white + 1) // 2  # half: 128 of 255, 32768 of 65535
        note = (f"{path}: soft edges ({100 * soft:.1f}% of the pixels between {names[1]} and {names[0]}) "
                "thresholded at half")
    if sides.shape[2] == 3:
        check_channels_agree(path, sides, values)
    return Tones(sides[..., 0], names, note)


def damage_is_white(path: str | os.PathLike, tones: Tones, convention: str) -> tuple[bool, str]:
    """Whether the white (or opaque) tone is the damage, and why, in words (module docstring, step 2)."""
    if convention not in CONVENTIONS:
        raise DipError("--mask-convention", f"must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
    if convention != "auto":
        return convention == "white-missing", f"--mask-convention {convention}"
    share = float(tones.white.mean())
    white, black = tones.names
    if share in (0.0, 1.0):
        raise DipError(path, f"mask is all {white if share else black}: it marks no damage (two tones are needed: "
                             "the damage in one, the rest in the other)")
    limit = settings()["mask"]["damage_max_fraction"]
    if min(share, 1 - share) > limit:
        raise DipError(path, f"cannot tell which tone marks the damage: {white} covers {100 * share:.1f}% of the "
                             f"mask and {black} {100 * (1 - share):.1f}% (auto decides only when one covers at most "
                             f"{100 * limit:g}%); give --mask-convention white-missing ({white} = fill in, {TOOLS}) "
                             f"or --mask-convention white-known ({white} = keep)")
    is_white = share <= limit
    other = "white-known" if is_white else "white-missing"
    return is_white, (f"auto: the smaller part is the damage{', ' + TOOLS if is_white and white == 'white' else ''}; "
                      f"--mask-convention {other} reads it the other way")


def read_drawn_mask(path: str | os.PathLike, shape: tuple[int, int], convention: str = "auto",
                    threshold: float | None = None) -> DrawnMask:
    """The known pixels of a drawn mask (True = keep) and the lines that say how it was read."""
    tones = read_tones(path, shape, threshold)
    is_white, why = damage_is_white(path, tones, convention)
    known = ~tones.white if is_white else tones.white
    if not known.any():
        raise DipError(path, "mask has no pixel to keep (all of it is damage)")
    white, black = tones.names
    damaged, kept = (white, black) if is_white else (black, white)
    most = "; that is most of the image" if known.mean() < 0.5 else ""
    line = f"{path}: {damaged} = fill in ({100 * (1 - known.mean()):.1f}% of the mask{most}), {kept} = keep ({why})"
    return DrawnMask(known, tuple(x for x in (tones.note, line) if x))
