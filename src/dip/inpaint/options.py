"""`dip inpaint`'s options, typed and frozen: parsed once from the command line, checked before anything is read."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from dip.data.overwrite import check_output
from dip.engine.request import FitOptions
from dip.errors import DipError


@dataclass(frozen=True)
class InpaintOptions:
    """The files, the photo path's own options, and the options shared with ``dip fit`` (``fit``); ``fit.preset``
    may be ``auto`` and ``fit.precision`` None (auto's, else fp32: :func:`dip.inpaint.autopreset.pick`)."""

    image: Path
    mask: Path
    output: Path
    fit: FitOptions
    force: bool = False
    mask_convention: str = "auto"  # auto | white-missing | white-known
    mask_threshold: float | None = None
    keep_known: bool = True
    max_side: int | None = None
    stop: str = "never"  # never | auto
    average: bool = True
    holdout: float = 0.05
    holdout_patience: int = 200

    @classmethod
    def from_namespace(cls, args: Any) -> InpaintOptions:
        """The options of a parsed ``dip inpaint`` command line (argparse's namespace)."""
        own = {f.name: getattr(args, f.name) for f in fields(cls) if f.name != "fit"}
        return cls(**own, fit=FitOptions.from_namespace(args))

    def check(self) -> None:
        """Refuse (one line) options that cannot work, before reading anything."""
        out = self.output
        if out.suffix.lower() != ".png":
            raise DipError(out, "the output must be a .png file")
        if self.mask_threshold is not None and not 0 < self.mask_threshold <= 255:
            raise DipError("--mask-threshold", f"must be in (0, 255], got {self.mask_threshold}")
        if self.max_side is not None and self.max_side < 16:
            raise DipError("--max-side", f"must be at least 16, got {self.max_side}")
        if self.max_side is not None and self.fit.crop is not None:
            raise DipError("--max-side", "cannot be combined with --crop")
        check_output(out, {"the input image": self.image, "the mask": self.mask}, self.force)
        from dip.engine.holdout import check_options as check_holdout

        check_holdout(self.holdout, self.holdout_patience)
