"""Progress of a fit: a tqdm bar on a terminal, one plain line per evaluation in logs (pipeline, cluster)."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """A tqdm bar with ETA and PSNR on a terminal; a plain ``[dip] it N/M ...`` line per evaluation otherwise.

    ``enabled`` None means "only on a terminal"; False is silent except for the plain lines (benchmarks pass
    ``quiet=True`` to silence those too).
    """

    def __init__(self, total: int, enabled: bool | None, desc: str, quiet: bool = False):
        self.tty = sys.stderr.isatty() if enabled is None else enabled
        self.total, self.desc, self.quiet = total, desc, quiet
        self.t0, self.initial = time.perf_counter(), 0
        self.bar: Any = None

    def begin(self, initial: int) -> None:
        """Start counting at iteration ``initial`` (a resumed fit starts where its checkpoint was)."""
        self.t0, self.initial = time.perf_counter(), initial
        if self.tty and not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=initial, desc=self.desc, unit="it", dynamic_ncols=True)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def report(self, it: int, row: dict[str, Any] | None, note: str | None = None) -> None:
        """Show an evaluation row (``iteration`` ``it``: the estimate after ``it`` steps) and a note."""
        if row is None or self.quiet:
            return
        shown = {"psnr": row["psnr"], "masked": row["psnr_masked"]}
        if self.bar is not None:
            post = {k: f"{v:.2f}" for k, v in shown.items() if v == v}
            self.bar.set_postfix({**post, **({"stop": note} if note else {})}, refresh=False)
            return
        done = min(it + 1, self.total) - self.initial
        rate = (time.perf_counter() - self.t0) / max(done, 1)
        eta = rate * max(self.total - it - 1, 0)
        loss_txt = f" loss {row['loss']:.3e}" if row["loss"] == row["loss"] else ""
        psnr_txt = f" psnr {row['psnr']:.2f}" if row["psnr"] == row["psnr"] else ""
        print(f"[dip] it {min(it + 1, self.total)}/{self.total}{loss_txt} masked {row['psnr_masked']:.2f}{psnr_txt} "
              f"({rate:.3f} s/it, eta {eta:.0f} s){'; ' + note if note else ''}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
