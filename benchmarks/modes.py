"""The execution modes of the benchmarks: one table (:data:`MODES`) that every script names modes from.

A mode is one way of running the same fit: precision, memory format, torch.compile, CUDA graph replay, and
environment variables for the process that runs it. ``fp32`` (fp32, NCHW, eager) is the reference: what the
authors' code does.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    """One way of running the same fit."""

    name: str
    precision: str  # fp32 | tf32 | bf16: the FitRequest precision (bf16 = autocast)
    memory_format: str  # contiguous | channels_last
    compile: bool = False
    graph: bool = False  # CUDA graph replay of forward + backward (dip fit --cuda-graph on)
    env: tuple[tuple[str, str], ...] = ()  # environment of the mode's process

    @property
    def dtype(self) -> str:
        """The GEMM peak this mode is compared with."""
        return self.precision

    @property
    def cuda_graph(self) -> str:
        """The FitRequest ``cuda_graph`` value: on for -graph modes, off otherwise (eager)."""
        return "on" if self.graph else "off"

    @property
    def cuda_only(self) -> bool:
        """tf32 and CUDA graphs exist only on CUDA."""
        return self.precision == "tf32" or self.graph


MODES = {m.name: m for m in (
    Mode("fp32", "fp32", "contiguous"),  # the reference: fp32, NCHW, eager
    # The same with glibc's allocator left as it is (runtime.keep_freed_memory off): fp32 NCHW eager as PyTorch
    # runs it out of the box, i.e. the "straightforward implementation" on a CPU.
    Mode("fp32-stock", "fp32", "contiguous", env=(("DIP_MALLOC_TUNE", "0"),)),
    Mode("fp32-cl", "fp32", "channels_last"),
    Mode("bf16", "bf16", "contiguous"),
    Mode("bf16-cl", "bf16", "channels_last"),
    Mode("fp32-cl-compile", "fp32", "channels_last", compile=True),
    Mode("bf16-cl-compile", "bf16", "channels_last", compile=True),
    Mode("tf32", "tf32", "contiguous"),  # CUDA only
    Mode("tf32-cl", "tf32", "channels_last"),  # CUDA only
    Mode("tf32-compile", "tf32", "contiguous", compile=True),  # CUDA only
    Mode("fp32-graph", "fp32", "contiguous", graph=True),  # CUDA only, as are all -graph modes
    Mode("tf32-graph", "tf32", "contiguous", graph=True),
    Mode("tf32-cl-graph", "tf32", "channels_last", graph=True),
    Mode("bf16-cl-graph", "bf16", "channels_last", graph=True),
)}
REFERENCE = "fp32"  # fp32, NCHW, eager (no CUDA graph): what the authors' code does
STOCK = "fp32-stock"  # when benchmarked, a second speed-up column is against it
# The modes a plain `dip fit` runs as they are (no torch.compile, no environment of their own): parity's.
FIT_MODES = [name for name, m in MODES.items() if not m.compile and not m.env]

DEFAULT_MODES = {
    # torch.compile is left out on CPU: 70-150 s of compilation per size, then 0.83-0.89x of eager
    # (docs/performance.md).
    "cpu": ["fp32-stock", "fp32", "fp32-cl", "bf16", "bf16-cl"],
    "cuda": ["fp32", "fp32-cl", "tf32", "tf32-cl", "bf16-cl", "fp32-graph", "tf32-graph", "tf32-cl-graph",
             "bf16-cl-graph"],
}


def mode_of(spec: str) -> tuple[Mode, dict[str, str]]:
    """``NAME[@VAR=VALUE...]``: a mode, plus environment variables for its process (A/B of env settings,
    e.g. ``bf16-cl@DIP_MALLOC_TUNE=0`` for glibc's default allocator behaviour)."""
    name, *env = spec.split("@")
    if name not in MODES or not all("=" in e for e in env):
        raise argparse.ArgumentTypeError(f"unknown mode {spec!r} (known: {', '.join(MODES)}; add @VAR=VALUE)")
    return MODES[name], {**dict(MODES[name].env), **dict(e.split("=", 1) for e in env)}


def check_mode(spec: str) -> str:
    """argparse type: a valid mode spec, kept as given."""
    mode_of(spec)
    return spec
