"""Classical (non-learned) inpainting: the baseline every DIP number is set beside.

Biharmonic inpainting (scikit-image, ``skimage.restoration.inpaint_biharmonic``) fills the missing pixels with
the smooth function u that agrees with the known pixels and solves the biharmonic equation Δ²u = 0 on the missing
region. It needs no training, no GPU and well under a second for a 512x512 image with 50% of its pixels missing.
"""

from __future__ import annotations

import numpy as np
from skimage.restoration import inpaint_biharmonic

METHODS = ("biharmonic",)


def fill(image: np.ndarray, known: np.ndarray, method: str = "biharmonic") -> np.ndarray:
    """The (C, H, W) image in [0, 1] with its missing pixels (``known`` False, an (H, W) bool) filled.

    Known pixels are returned unchanged (bit for bit); only the missing ones are computed.
    """
    if method not in METHODS:
        raise ValueError(f"unknown classical fill {method!r} (one of {', '.join(METHODS)})")
    known = np.asarray(known, dtype=bool)
    if known.all():
        return image.copy()
    filled = inpaint_biharmonic(np.moveaxis(image, 0, -1), ~known, channel_axis=-1)
    out = np.moveaxis(filled, -1, 0).astype(image.dtype, copy=False)
    out = np.where(known[None], image, np.clip(out, 0.0, 1.0))
    return np.ascontiguousarray(out)
