"""SIGINT and SIGTERM during a fit: finish the current iteration, save a checkpoint, then leave."""

from __future__ import annotations

import signal
from typing import Any


class StopRequests:
    """Within the block, SIGINT and SIGTERM set ``requested`` (the signal's name) instead of killing the process
    mid-step; the previous handlers are put back on exit. Outside the main thread signals are left alone."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._old: dict[signal.Signals, Any] = {}

    def __enter__(self) -> "StopRequests":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = signal.Signals(signum).name

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
