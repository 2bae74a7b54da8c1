"""Devices, threads and numeric precision: the parts of a fit that depend on where it runs."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

import torch

from dip.core.modes import CUDA_GRAPH_MODES, DEVICES, MEMORY_FORMATS, PRECISIONS
from dip.errors import DipError


def pick_device(name: str) -> torch.device:
    """auto -> cuda if available, else mps, else cpu; an explicit device that is absent is an error."""
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DipError("--device", no_cuda_problem())
    if name == "mps" and not has_mps:
        raise DipError("--device", "mps requested but the Metal backend is not available")
    if name not in DEVICES:
        raise DipError("--device", f"must be one of {', '.join(DEVICES)}, got {name!r}")
    return torch.device(name)


@dataclass(frozen=True)
class Placement:
    """Where and how one fit computes, resolved once: the device, the torch threads in force, channels-last
    memory and CUDA-graph replay (the precision stays the request's)."""

    device: torch.device
    threads: int
    channels_last: bool
    cuda_graph: bool

    @property
    def device_name(self) -> str:
        return device_name(self.device)


def place(device: str | torch.device, threads: int | None, precision: str, memory_format: str, cuda_graph: str,
          deterministic: bool) -> Placement:
    """Resolve the requested device (a name, or a device :func:`pick_device` gave already), threads, memory format
    and CUDA-graph mode, and configure torch for them."""
    dev = device if isinstance(device, torch.device) else pick_device(device)
    n = configure(dev, threads, precision, deterministic)
    return Placement(dev, n, use_channels_last(memory_format, dev, precision), use_cuda_graph(cuda_graph, dev))


def no_cuda_problem() -> str:
    """Why torch sees no CUDA device and the ways out, in one line (a CPU fit of the paper profile would take
    hours where a GPU takes minutes, so nothing falls back to the CPU silently)."""
    on_cpu = "or run on the CPU on purpose with --device cpu (in the pipeline: --config device=cpu)"
    if torch.version.cuda is None:
        return (f"cuda requested, but torch {torch.__version__} is a CPU-only build: install the CUDA build of "
                f"torch (docs/cluster.md, \"CUDA build of torch\"), {on_cpu}")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    shown = "" if visible is None else f", CUDA_VISIBLE_DEVICES={visible!r}"
    return (f"cuda requested, but torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU{shown}: run "
            f"on a machine with a GPU and ask the scheduler for it (sbatch --gpus=1; the pipeline's SLURM "
            f"profile does), {on_cpu}")


def describe(device: torch.device, precision: str, threads: int) -> str:
    """Where a fit runs, in one line (the first of every fit's log): device and its name, precision, threads,
    torch and CUDA versions."""
    name = device_name(device)
    cudnn = torch.backends.cudnn.version() if device.type == "cuda" else None
    return (f"device {device.type}{f' ({name})' if name != device.type else ''}, precision {precision}, "
            f"{threads} thread{'s' if threads != 1 else ''}, torch {torch.__version__}, "
            f"CUDA {torch.version.cuda or 'none (CPU-only build)'}" + (f", cuDNN {cudnn}" if cudnn else ""))


def default_threads() -> int:
    """What the scheduler gave this process: SLURM's cpus-per-task, else the CPU affinity mask."""
    for var in ("DIP_THREADS", "SLURM_CPUS_PER_TASK"):
        if os.environ.get(var, "").isdigit() and int(os.environ[var]) > 0:
            return int(os.environ[var])
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def configure(device: torch.device, threads: int | None, precision: str, deterministic: bool) -> int:
    """Set torch threads and the numeric modes; returns the thread count in force."""
    if precision not in PRECISIONS:
        raise DipError("--precision", f"must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "tf32" and device.type != "cuda":
        raise DipError("--precision", "tf32 exists only on CUDA devices; use fp32 or bf16 here")
    if threads is not None and threads <= 0:
        raise DipError("--threads", f"must be a positive integer, got {threads}")
    n = threads or default_threads()
    torch.set_num_threads(n)
    if device.type == "cpu":
        keep_freed_memory()
    if device.type == "cuda":
        tf32 = precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
    return n


def keep_freed_memory() -> bool:
    """Have glibc malloc reuse freed memory instead of handing it back to the OS (CPU fits; Linux/glibc only).

    A 512x512 fit's activations are 30-130 MB each: above glibc's mmap threshold (32 MB at most), so each one
    is mmap'd fresh and unmapped when freed, and every iteration page-faults its whole working set in again
    (kernel-zeroed pages; the measured share is in docs/performance.md). No mmap for
    large blocks (M_MMAP_MAX=0) and no heap trimming (M_TRIM_THRESHOLD=-1, i.e. never) let the next
    iteration reuse the same pages. Numbers are unaffected. DIP_MALLOC_TUNE=0 turns it off.
    """
    if os.environ.get("DIP_MALLOC_TUNE") == "0" or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, -1))
    except (OSError, AttributeError):  # not glibc (musl): leave the allocator alone
        return False


def use_channels_last(mode: str, device: torch.device, precision: str) -> bool:
    """auto: channels-last where it was measured faster (docs/performance.md): with bf16 (CPU and CUDA); fp32
    stays NCHW."""
    if mode not in MEMORY_FORMATS:
        raise DipError("--memory-format", f"must be one of {', '.join(MEMORY_FORMATS)}, got {mode!r}")
    if mode == "auto":
        return precision == "bf16"
    return mode == "channels_last"


def use_cuda_graph(mode: str, device: torch.device) -> bool:
    """auto: replay each iteration's forward + backward as a CUDA graph on CUDA devices (same kernels, same
    numbers, without Python's per-kernel launch cost; docs/performance.md); never elsewhere."""
    if mode not in CUDA_GRAPH_MODES:
        raise DipError("--cuda-graph", f"must be one of {', '.join(CUDA_GRAPH_MODES)}, got {mode!r}")
    if mode == "on" and device.type != "cuda":
        raise DipError("--cuda-graph", f"CUDA graphs need a CUDA device, this fit runs on {device.type}")
    return device.type == "cuda" and mode != "off"


def autocast(device: torch.device, precision: str, cache: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast for the forward pass; a no-op for fp32/tf32. ``cache=False`` inside CUDA graph capture."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def machine() -> dict[str, str]:
    """What decides a CPU fit's exact numbers besides the request: the processor, the SIMD kernels torch picks
    on it, and torch's version. DIP's optimisation is chaotic, so fits on machines that differ here take other
    trajectories and end apart by about the seed-to-seed spread (docs/reliability.md)."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    import platform

    return {"cpu": model or platform.processor() or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 where ``device`` computes it natively (a CUDA GPU with bf16, a CPU with AVX512-BF16 or
    AMX), fp32 elsewhere: emulated bf16 is several times slower than fp32. Any other precision is returned as is."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and native_bf16() else "fp32"


def native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX). Without it torch emulates bf16, and a
    bf16 fit runs several times slower than fp32 (measured on an AVX2 AMD EPYC: docs/photo.md)."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)
