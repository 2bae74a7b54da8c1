"""`dip inpaint --preset auto`: the kind of damage in a mask, and the preset that suits it on this device.

:func:`classify_damage` looks at the missing pixels only (scipy.ndimage) and answers one of

- ``holes``: some missing region is thick: it holds a disc of radius ``hole_min_radius`` or more (the maximum
  of the Euclidean distance transform of the missing pixels: the largest inscribed radius);
- ``scattered``: the missing pixels are isolated pixels or specks all over the image: the median 4-connected
  missing region has at most ``scattered_max_region`` pixels (a Bernoulli mask's median region is 1-2 pixels
  at any drop rate, since most of its regions are single pixels);
- ``strokes``: anything else: text, scratches, thin lines.

:func:`choose` maps the damage and the device type to a preset and a precision; :func:`pick` returns what
``dip inpaint`` fits with (auto's choice, or the named preset), ``--precision`` applied. The thresholds, the table and
the ETA settings are data: ``dip/inpaint/auto.yaml`` (schema ``dip/data/schemas/auto.schema.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import torch
import yaml
from scipy import ndimage

from dip.core import compute
from dip.data import schemas
from dip.errors import DipError

KINDS = ("scattered", "strokes", "holes")
WHAT = {"scattered": "scattered missing pixels", "strokes": "thin strokes (text, scratches)",
        "holes": "large holes"}


@cache
def settings() -> dict[str, Any]:
    """``dip/inpaint/auto.yaml``, validated."""
    data = yaml.safe_load(resources.files("dip.inpaint").joinpath("auto.yaml").read_text(encoding="utf-8"))
    error = schemas.first_error(data, "auto")
    if error is not None:
        raise DipError(f"dip/inpaint/auto.yaml: {schemas.path_of(error)}", schemas.problem(error))
    return data


@dataclass(frozen=True)
class Damage:
    """The class of a mask's damage and the two numbers it was decided on."""

    kind: str  # one of KINDS
    radius: float  # largest inscribed radius of a missing region (pixels)
    median_region: float  # median size of the 4-connected missing regions (pixels)
    missing: float  # fraction of pixels missing

    def why(self) -> str:
        """The measurements, in words, against the thresholds of ``auto.yaml``."""
        t = settings()["damage"]
        return (f"{100 * self.missing:.1f}% missing, thickest region radius {self.radius:.1f} px "
                f"({'>=' if self.radius >= t['hole_min_radius'] else '<'} {t['hole_min_radius']}), median region "
                f"{self.median_region:g} px ({'<=' if self.median_region <= t['scattered_max_region'] else '>'} "
                f"{t['scattered_max_region']})")


def classify_damage(known: np.ndarray) -> Damage:
    """The damage of an (H, W) known-pixel mask (True = known): holes, scattered or strokes (module docstring)."""
    t = settings()["damage"]
    missing = ~np.asarray(known, dtype=bool)
    if not missing.any():
        return Damage("scattered", 0.0, 0.0, 0.0)
    radius = float(ndimage.distance_transform_edt(missing).max())
    labels, n = ndimage.label(missing)  # 4-connectivity (scipy's default structure)
    median_region = float(np.median(np.bincount(labels.ravel())[1:]))
    if radius >= t["hole_min_radius"]:
        kind = "holes"
    elif median_region <= t["scattered_max_region"]:
        kind = "scattered"
    else:
        kind = "strokes"
    return Damage(kind, radius, median_region, float(missing.mean()))


@dataclass(frozen=True)
class Choice:
    """What auto picked: preset, precision, and the one-line reason."""

    preset: str
    precision: str
    damage: Damage
    device: str
    iterations: int | None = None  # the device's budget for this image size; None: the preset's own

    @property
    def reduced(self) -> bool:
        """Whether this is a reduced version of the full (CUDA) preset for the same damage."""
        return self.preset != settings()["devices"]["cuda"]["presets"][self.damage.kind]

    def line(self) -> str:
        """``--preset auto: <preset> (<precision>) for <damage> on <device>: <measurements>[; note]``."""
        full = settings()["devices"]["cuda"]["presets"][self.damage.kind]
        note = f"; reduced settings for {self.device} (a CUDA GPU gets {full})" if self.reduced else ""
        if self.device == "cpu" and self.precision == "fp32" and settings()["devices"]["cpu"]["precision"] == "auto":
            note += "; fp32, as this CPU has no native bf16"
        if self.iterations is not None:
            note += f"; {self.iterations} iterations for this size (auto.yaml's budget)"
        return (f"--preset auto: {self.preset} ({self.precision}) for {WHAT[self.damage.kind]} on {self.device}: "
                f"{self.damage.why()}{note}")


def choose(known: np.ndarray, device: str) -> Choice:
    """The preset and precision for the mask ``known`` on a device of type ``device`` (cpu, cuda, mps)."""
    damage = classify_damage(known)
    entry = settings()["devices"][device]
    # auto: bf16 only where the hardware has it; emulated bf16 is several times slower than fp32 (docs/photo.md)
    precision = compute.resolve_precision(entry["precision"], torch.device(device))
    preset = entry["presets"][damage.kind]
    return Choice(preset, precision, damage, device, budget_iterations(entry, preset, known.size))


def budget_iterations(entry: dict[str, Any], preset: str, pixels: int) -> int | None:
    """The iterations of ``preset`` under the device's budget for an image of ``pixels`` pixels:
    min(the preset's, max(min_iterations, round(pixel_iterations / pixels))); None without a budget or below it."""
    from dip.data.presets import resolve

    if "budget" not in entry:
        return None
    own = resolve(preset)["iterations"]
    n = min(own, max(entry["budget"]["min_iterations"], round(entry["budget"]["pixel_iterations"] / pixels)))
    return n if n < own else None


@dataclass(frozen=True)
class PresetChoice:
    """The preset and precision ``dip inpaint`` fits with, and why: auto's choice (None for a named preset)."""

    preset: str
    precision: str
    auto: Choice | None = None

    @property
    def iterations(self) -> int | None:
        """Auto's iterations for this image size, where its budget cuts the preset's; None: the preset's."""
        return self.auto.iterations if self.auto is not None else None

    @property
    def reduced(self) -> bool:
        """Whether auto picked the reduced version of the full (CUDA) preset for this device."""
        return self.auto is not None and self.auto.reduced


def pick(preset: str, precision: str | None, known: np.ndarray, device: str) -> PresetChoice:
    """``--preset`` and ``--precision`` resolved: a named preset runs fp32 unless ``--precision`` says otherwise;
    ``auto`` picks both for the damage of ``known`` on a device of type ``device`` (``--precision`` still wins).
    ``--precision auto`` is resolved here, for the device already chosen."""
    auto = choose(known, device) if preset == "auto" else None
    chosen = precision or (auto.precision if auto is not None else "fp32")
    return PresetChoice(auto.preset if auto is not None else preset,
                        compute.resolve_precision(chosen, torch.device(device)), auto)
