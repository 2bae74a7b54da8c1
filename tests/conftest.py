"""Shared fixtures: tiny synthetic images and a tiny network so engine tests take seconds."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("DIP_DATA_MIRROR") or ROOT.parent / "shared" / "data")


def checkout_env() -> dict[str, str]:
    """The environment with the checkout on PYTHONPATH: ``benchmarks`` is not installed (the wheel holds ``dip``
    only), so ``python -m benchmarks.X`` runs from a checkout, as a person runs it from the checkout's root."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}

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


class Watched:
    """A `dip` subprocess whose stderr lines are collected by a thread, so a test can wait for a line.

    ``wait_for(pattern, when)`` returns the first match of a regular expression in a stderr line (new or
    already seen) for which ``when(match)`` holds; the deadline is only a failure bound: the wait ends as soon
    as the line is there.
    """

    def __init__(self, *args: str):
        cmd = [sys.executable, "-m", "dip", *map(str, args)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self._new.put(line.rstrip("\n"))
        self._new.put(None)

    def wait_for(self, pattern: str, when=lambda m: True, timeout: float = 300) -> re.Match:
        rx = re.compile(pattern)
        for line in self.lines:
            if (m := rx.search(line)) and when(m):
                return m
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._new.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n" + "\n".join(self.lines[-20:]))
            if line is None:
                self._new.put(None)  # later waits see the end too
                raise AssertionError(f"the process ended (rc {self.proc.wait()}) before a line matching {pattern!r}:\n"
                                     + "\n".join(self.lines[-20:]))
            self.lines.append(line)
            if (m := rx.search(line)) and when(m):
                return m

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        """Wait for the exit; (return code, all of stderr)."""
        rc = self.proc.wait(timeout=timeout)
        while (line := self._new.get(timeout=timeout)) is not None:
            self.lines.append(line)
        self._new.put(None)
        return rc, "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def dip(*args: str, check: bool = False, **kw) -> subprocess.CompletedProcess:
    """Run the real `dip` command in a subprocess (as a user would)."""
    cmd = [sys.executable, "-m", "dip", *map(str, args)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, check=check, env=env, **kw)


@pytest.fixture
def img(tmp_path: Path) -> Path:
    return make_image(tmp_path / "img.png")


@pytest.fixture
def mask(tmp_path: Path) -> Path:
    return make_mask(tmp_path / "mask.png")
