"""Checkpoints: a fit's own state (``Fit.state_dict``) on disk, under the fingerprint of what made it.

A checkpoint is resumed only when its fingerprint (:func:`dip.engine.request.fingerprint`: parameters, seed, inputs,
precision, device, threads, version) equals the current fit's; any other one is ignored with a warning and
overwritten. It is written atomically (:class:`dip.data.atomic.AtomicPath`), so a kill during a save keeps the previous one.

A checkpoint is data, never code: it holds only tensors, numbers, strings, lists, tuples and dicts (generator
states are byte tensors), so it is read with ``torch.load(weights_only=True)`` and nothing needs allowlisting.
A file that would need pickle's code paths (an object whose unpickling runs a function) is refused like any
unreadable one: one warning line, and the fit starts from iteration 0 (docs/reliability.md, "What a hostile
file can and cannot do").
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from dip.data.atomic import AtomicPath
from dip.errors import DipError

log = logging.getLogger("dip.engine.checkpoint")


class Checkpoint:
    """``<folder>/checkpoint.pt`` of one fit."""

    def __init__(self, folder: Path, fingerprint: str):
        self.folder, self.fingerprint = Path(folder), fingerprint
        self.path = self.folder / "checkpoint.pt"

    def save(self, iteration: int, state: dict[str, Any]) -> None:
        """Write ``state`` (with this fingerprint and ``iteration``); one-line error when the disk refuses."""
        try:
            with AtomicPath(self.path) as tmp:
                torch.save({"fingerprint": self.fingerprint, "iteration": iteration, **state}, tmp)
        except (OSError, RuntimeError) as e:  # disk full / read-only: torch.save raises a cryptic RuntimeError
            why = e.strerror if isinstance(e, OSError) and e.strerror else _write_failure(self.folder, e)
            if self.folder.is_dir() and not any(self.folder.iterdir()):
                self.folder.rmdir()  # an earlier checkpoint is kept; an empty folder is not
            raise DipError(self.path, f"cannot write the checkpoint at iteration {iteration} ({why})") from None

    def load(self, quiet: bool = False) -> dict[str, Any] | None:
        """The saved state, or None when there is none, it is unreadable, or it was made by another fit (said
        in a warning unless ``quiet``)."""
        if not self.path.exists():
            return None
        warn = (lambda *a: None) if quiet else log.warning
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)  # RNG states stay on the CPU
        except Exception as e:  # a damaged or hostile checkpoint is not worth dying for: start over, loudly
            warn("ignoring unreadable checkpoint %s (%s); starting from iteration 0", self.path, _refusal(e))
            return None
        if not isinstance(state, dict) or state.get("fingerprint") != self.fingerprint:
            warn("ignoring checkpoint %s: it was made with other arguments or inputs; starting from "
                 "iteration 0 (it will be overwritten)", self.path)
            return None
        return state

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _refusal(e: Exception) -> str:
    """Why ``torch.load`` refused a file, in one line. Its own message runs over several lines and advises
    ``weights_only=False``, which is what must never be done with a file of unknown origin."""
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(e)).split())  # without the terminal bold codes
    if m := re.search(r"Unsupported global: GLOBAL (\S+)", text):
        return (f"it holds a Python object ({m.group(1)}) besides tensors and plain data; refused: loading it "
                "could run code")
    if m := re.search(r"WeightsUnpickler error: (.+?)(?: Check the documentation|$)", text):
        return f"not a checkpoint of plain data: {m.group(1).rstrip('. ')}"
    return text or type(e).__name__


def _write_failure(folder: Path, e: Exception) -> str:
    """Why a write into ``folder`` failed, when the exception does not say (torch.save); call before cleaning up."""
    try:
        if shutil.disk_usage(folder).free < (1 << 20):
            return "no space left on device"
    except OSError:
        pass
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
