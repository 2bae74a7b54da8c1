"""The crop box: the window of an image a fit works on, and the image inside a fit's padded canvas.

One type for both: ``--crop N`` (central unless ``--crop-at TOP,LEFT``) cuts an NxN box out of the source image
(:func:`dip.engine.request.load_inputs`), metrics.json records it (``crop``: {top, left, height, width}), the
report cuts the original with the recorded box (:mod:`dip.report.figure7`), and the fit crops its network's
output from the padded size back to the image (``CropBox(0, 0, h, w)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dip.errors import DipError

A = TypeVar("A")  # an array or tensor whose last two axes are (H, W)
KEYS = ("top", "left", "height", "width")  # metrics.json's crop record, in this order


def check_crop_options(crop: int | None, crop_at: tuple[int, int] | None) -> None:
    """Refuse ``--crop``/``--crop-at`` values that describe no crop (dip fit, dip inpaint, dip baseline), before
    any file is read."""
    if crop is not None and crop <= 0:
        raise DipError("--crop", f"must be a positive integer, got {crop}")
    if crop_at is not None and crop is None:
        raise DipError("--crop-at", "needs --crop")


@dataclass(frozen=True)
class CropBox:
    """A box of an image, in pixels: its top-left corner and its size."""

    top: int
    left: int
    height: int
    width: int

    @classmethod
    def of(cls, crop: int | None, crop_at: tuple[int, int] | None, size: tuple[int, int],
           image: Any) -> CropBox | None:
        """The ``crop`` x ``crop`` box of ``--crop`` in an image of ``size`` (h, w), central unless ``crop_at``
        (top, left); None without a crop. Refuses (naming ``image``) a box that does not fit the image."""
        if not crop:
            return None
        check_crop_options(crop, crop_at)
        h, w = size
        if crop > min(h, w):
            raise DipError("--crop", f"{crop} is larger than the image ({w}x{h}): {image}")
        top, left = crop_at or ((h - crop) // 2, (w - crop) // 2)
        box = cls(top, left, crop, crop)
        if not box.inside(size):
            raise DipError("--crop-at", f"a {crop}x{crop} crop at ({top}, {left}) leaves the {w}x{h} image {image}")
        return box

    @classmethod
    def from_record(cls, record: dict[str, Any] | None, where: str | Path) -> CropBox | None:
        """The box metrics.json recorded (None: no crop); a record without the four integers is refused."""
        if record is None:
            return None
        try:
            return cls(*(int(record[k]) for k in KEYS))
        except (KeyError, TypeError, ValueError):
            raise DipError(where, f"invalid crop box {record!r} (need top, left, height, width)") from None

    def inside(self, size: tuple[int, int]) -> bool:
        """Whether the box lies within an image of ``size`` (h, w)."""
        h, w = size
        return 0 <= self.top and 0 <= self.left and self.top + self.height <= h and self.left + self.width <= w

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.height, self.width

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, columns): ``a[box.slices]`` cuts an (H, W[, C]) array."""
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)

    def cut(self, a: A) -> A:
        """``a[..., rows, columns]``: the box of an array or tensor whose last two axes are (H, W) (a view)."""
        return a[(Ellipsis, *self.slices)]  # type: ignore[index]

    def as_record(self) -> dict[str, int]:
        """What metrics.json records: {"top": t, "left": l, "height": h, "width": w}."""
        return {k: int(getattr(self, k)) for k in KEYS}


def crop_size(size: tuple[int, int], crop: int | None) -> tuple[int, int]:
    """(h, w) that a fit of an image of ``size`` works on with ``--crop`` (estimates made before the box is checked
    against the image: memory, time)."""
    h, w = size
    return (min(h, crop), min(w, crop)) if crop else (h, w)


def crop_record(box: CropBox | None) -> dict[str, int] | None:
    """metrics.json's ``crop``: the box's record, or null without a crop."""
    return None if box is None else box.as_record()
