"""What the benchmark scripts share: the checkout's config/config.yaml, the data mirror and the pipeline's mask.

The scripts run from a checkout with the project installed (``pip install -e .``); where it is not installed
(a GPU machine), the shell scripts put the checkout and its ``src/`` on PYTHONPATH.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from dip.data.config import load_config

ROOT = Path(__file__).resolve().parents[1]  # the checkout


def project_config() -> dict[str, Any]:
    """config/config.yaml (through the project's one reader): the profiles' crops, overrides, precision, threads."""
    return load_config(ROOT / "config" / "config.yaml")


def data_folder(data: Path | None) -> Path:
    """The data: ``data``, else $DIP_DATA_MIRROR, else ../shared/data (the mirror's layout: table1/, fig7/)."""
    return data or Path(os.environ.get("DIP_DATA_MIRROR") or ROOT.parent / "shared" / "data")


def table1_image(name: str, data: Path | None, tool: str) -> Path:
    """A Table 1 image from :func:`data_folder`; exits with one line if absent."""
    image = data_folder(data) / "table1" / f"{name}.png"
    if not image.exists():
        sys.exit(f"{tool}: {image} not found (give --data)")
    return image


def make_mask(image: Path, seed: int, drop: float, out: Path, tool: str) -> Path:
    """The pipeline's mask, ``dip mask --bernoulli DROP --seed SEED --like IMAGE -o OUT`` (kept if ``out``
    exists); its report line goes to stderr, and a failure exits with one line."""
    from dip.cli import main as dip

    if not out.exists():
        with contextlib.redirect_stdout(sys.stderr):
            rc = dip(["mask", "--bernoulli", str(drop), "--seed", str(seed), "--like", str(image), "-o", str(out)])
        if rc != 0:
            sys.exit(f"{tool}: dip mask failed for {image}")
    return out
