"""Shared fixtures: tiny synthetic images and a tiny network so engine tests take seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("DIP_DATA_MIRROR") or ROOT.parent / "shared" / "data")

# A small network: 3 scales of 8 channels. Same code path as the paper's network, a thousandth of the cost.
TINY = ["--set", "n_down=[8,8,8]", "--set", "n_up=[8,8,8]", "--set", "n_skip=[2,2,2]", "--eval-every", "10"]


def make_image(path: Path, size: tuple[int, int] = (32, 32), rgb: bool = False, seed: int = 0) -> Path:
    """A smooth synthetic image with some texture (deterministic)."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    rng = np.random.default_rng(seed)
    base = 0.5 + 0.3 * np.sin(6 * x) * np.cos(4 * y) + 0.05 * rng.standard_normal((h, w))
    a = np.clip(base * 255, 0, 255).astype(np.uint8)
    if rgb:
        a = np.stack([a, np.roll(a, 3, axis=0), np.roll(a, 5, axis=1)], axis=-1)
    Image.fromarray(a).save(path)
    return path


def make_mask(path: Path, size: tuple[int, int] = (32, 32), drop: float = 0.5, seed: int = 1) -> Path:
    known = np.random.default_rng(seed).random(size) >= drop
    Image.fromarray(np.where(known, 255, 0).astype(np.uint8)).save(path)
    return path


def dead_pid() -> int:
    """The id of a process that has exited (for temporaries "left by a killed writer")."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def dip(*args: str, check: bool = False, **kw) -> subprocess.CompletedProcess:
    """Run the real `dip` command in a subprocess (as a user would)."""
    cmd = [sys.executable, "-m", "dip.cli", *map(str, args)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, check=check, env=env, **kw)


@pytest.fixture
def img(tmp_path: Path) -> Path:
    return make_image(tmp_path / "img.png")


@pytest.fixture
def mask(tmp_path: Path) -> Path:
    return make_mask(tmp_path / "mask.png")
