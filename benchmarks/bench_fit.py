"""Seconds per training iteration of the Table 1 network, per execution mode, with FLOP rates and memory.

    .venv/bin/python -m benchmarks.bench_fit --sizes 256 512 --threads 2        # CPU (default sizes)
    python -m benchmarks.bench_fit --device cuda                                 # GPU (TFLOP/s, cudnn.benchmark)
    .venv/bin/python -m benchmarks.bench_fit --quick                             # smoke run (seconds)

One iteration is exactly the fit's: :meth:`dip.engine.fit.Fit.iterate` on a real :class:`dip.engine.fit.Fit` (z + noise,
forward under the mode's autocast, masked MSE, backward, Adam step) on a synthetic grayscale image with a 50%
mask; evaluation never falls inside a timed iteration (:mod:`benchmarks.worker`). The modes are
:data:`benchmarks.modes.MODES`.

Each mode runs in its own worker process (so its peak resident memory, ``ru_maxrss``, is its own), but the
workers take turns: the parent asks each for one iteration in round-robin, reversing the order every round,
and times a same-dtype GEMM (``torch.mm`` of large squares) between rounds. CPU timings on a shared machine
are noisy, so the claims are the *ratios* within one run: speed-up = median(reference) / median(mode), and
fraction of peak = FLOP rate at the median iteration time / best GEMM rate of the mode's dtype. FLOPs per
iteration (forward + backward) come from ``torch.utils.flop_counter.FlopCounterMode`` on the meta device.
A worker serves all sizes, smallest first, so its peak RSS at a size is the peak up to that size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.modes import DEFAULT_MODES, MODES, REFERENCE, STOCK, check_mode, mode_of
from benchmarks.worker import Child


# ------------------------------------------------------------------------------------------ measurements
def count_flops(preset: str, overrides: dict[str, Any], size: int, channels: int = 1) -> int:
    """FLOPs of one forward + backward (z needs no gradient, as in the fit), counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    from dip.core.network import SkipConfig, SkipNet
    from dip.data.presets import resolve

    cfg = SkipConfig.from_preset(resolve(preset, overrides), channels)
    h, w = cfg.padded(size, size)
    with torch.device("meta"):
        net, z = SkipNet(cfg), torch.empty(1, cfg.in_channels, h, w)
    with FlopCounterMode(display=False) as counter:
        net(z).square().sum().backward()
    return counter.get_total_flops()


class GemmPeak:
    """Times torch.mm of large squares per dtype at every :meth:`sample`; the peak is the best sample.

    Best, not median: a GEMM sample is short, so on a shared machine it either catches a quiet moment or is
    slowed by others; the fastest sample is the closest to what the hardware can do."""

    def __init__(self, device: torch.device, dtypes: list[str], n: int):
        self.device, self.n = device, n
        torch_dtype = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16}
        self.mats = {d: (torch.randn(n, n, device=device, dtype=torch_dtype[d]),
                         torch.randn(n, n, device=device, dtype=torch_dtype[d])) for d in dtypes}
        self.times: dict[str, list[float]] = {d: [] for d in dtypes}
        for d in dtypes:  # warm-up (MKL/oneDNN/cuBLAS kernel selection)
            self._mm(d, 2)

    def _mm(self, dtype: str, reps: int) -> float:
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
            torch.cuda.synchronize()
        a, b = self.mats[dtype]
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / reps

    def sample(self) -> None:
        reps = 10 if self.device.type == "cuda" else 1
        for _ in range(1 if self.device.type == "cuda" else 3):
            for d in self.times:
                self.times[d].append(self._mm(d, reps))

    def flops_per_s(self, dtype: str) -> float:
        return 2 * self.n**3 / min(self.times[dtype])


def bench(sizes: list[int], modes: list[str], args: argparse.Namespace, device: torch.device,
          gemm: GemmPeak, workdir: Path) -> list[dict[str, Any]]:
    """Start one worker per mode, then per size: warm each up, interleaved rounds, memory."""
    children = [Child(m, device.type, args.threads, args.preset, args.overrides, workdir) for m in modes]
    rows = []
    try:
        for c in children:
            c.ask()  # imported and ready
        for size in sizes:
            info = {}
            for c in children:  # one at a time, so compilation / autotuning does not overlap the others
                info[c.mode] = c.ask(f"setup {size} {args.warmup}")
                print(f"  {size}: {c.mode} ready ({info[c.mode]['setup_s']:.1f} s incl. {args.warmup} warm-up)",
                      file=sys.stderr, flush=True)
            times: dict[str, list[float]] = {m: [] for m in modes}
            for r in range(args.repeats):
                for c in (children if r % 2 == 0 else children[::-1]):
                    times[c.mode].append(c.ask("step")["s"])
                gemm.sample()
            mem = {c.mode: c.ask("memory") for c in children}
            rows += summarize(size, modes, times, info, mem, args, gemm)
    finally:
        for c in children:
            c.close()
    return rows


def summarize(size: int, modes: list[str], times: dict[str, list[float]], info: dict[str, dict[str, Any]],
              mem: dict[str, dict[str, Any]], args: argparse.Namespace, gemm: GemmPeak) -> list[dict[str, Any]]:
    """One table row per mode at one size."""
    flops = count_flops(args.preset, args.overrides, size)
    ref = statistics.median(times[REFERENCE]) if REFERENCE in times else float("nan")
    stock = statistics.median(times[STOCK]) if STOCK in times else None
    rows = []
    for m in modes:
        med = statistics.median(times[m])
        rate = flops / med
        rows.append({
            "size": size, "mode": m, "s_per_iter": med, "min_s": min(times[m]), "times_s": times[m],
            "flops": flops, "flop_rate": rate, "peak_dtype": mode_of(m)[0].dtype,
            "peak_fraction": rate / gemm.flops_per_s(mode_of(m)[0].dtype), "speedup": ref / med,
            "speedup_stock": None if stock is None else stock / med,
            "setup_s": info[m]["setup_s"], **mem[m],
        })
    return rows


def cpu_name() -> str:
    try:
        line = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name"))
        return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} CPUs"
    except (OSError, StopIteration):
        return f"cpu, {os.cpu_count()} CPUs"


def print_table(rows: list[dict[str, Any]], gemm: GemmPeak, device: torch.device, meta: dict[str, Any]) -> None:
    unit, scale = ("TFLOP/s", 1e12) if device.type == "cuda" else ("GFLOP/s", 1e9)
    mem_col = "max alloc (MB)" if device.type == "cuda" else "peak RSS (MB)"
    print(f"\n{meta['device_name']}, torch {meta['torch']}, threads {meta['threads']}, load avg "
          f"{meta['load_before']} -> {meta['load_after']}, {meta['repeats']} timed iterations per mode, preset "
          f"{meta['preset']}{' ' + json.dumps(meta['overrides']) if meta['overrides'] else ''}")
    print("GEMM peak (best, " + f"{gemm.n}x{gemm.n} torch.mm): "
          + ", ".join(f"{d} {gemm.flops_per_s(d) / scale:.3g} {unit}" for d in gemm.times))
    has_stock = any(r["speedup_stock"] is not None for r in rows)
    print(f"\n| size | mode | s/iter (median) | s/iter (min) | {unit} | % of same-dtype GEMM peak | {mem_col} | "
          f"speed-up vs {REFERENCE} |" + (f" speed-up vs {STOCK} |" if has_stock else ""))
    print("|---|---|---|---|---|---|---|---|" + ("---|" if has_stock else ""))
    for r in rows:
        mem = r.get("cuda_max_mb", r["maxrss_mb"])
        print(f"| {r['size']} | {r['mode']} | {r['s_per_iter']:.4g} | {r['min_s']:.4g} | "
              f"{r['flop_rate'] / scale:.3g} | {100 * r['peak_fraction']:.0f}% ({r['peak_dtype']}) | {mem:.0f} | "
              f"{r['speedup']:.2f}x |" + (f" {r['speedup_stock']:.2f}x |" if has_stock else ""))
    print("\nFLOPs per iteration (forward + backward, FlopCounterMode): "
          + ", ".join(f"{s}: {f / 1e9:.1f} G" for s, f in sorted({r['size']: r['flops'] for r in rows}.items())))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", help="image sizes (default 256 512; --quick: 64)")
    ap.add_argument("--modes", nargs="+", type=check_mode, metavar="MODE[@VAR=VALUE]",
                    help=f"of {', '.join(MODES)} (default: all that fit the device)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, help="torch threads per worker (default: the CPU affinity)")
    ap.add_argument("--preset", default="table1")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a preset value, e.g. --set 'n_down=[32,32,32,32,32]' (as dip fit --set)")
    ap.add_argument("--repeats", type=int, help="timed iterations per mode (default: cpu 3, cuda 30)")
    ap.add_argument("--warmup", type=int, help="untimed iterations per mode first (default: cpu 1, cuda 5)")
    ap.add_argument("--gemm-n", type=int, help="GEMM peak matrix size (default: cpu 2048, cuda 8192)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 64x64, fp32 and bf16-cl, 2 iterations")
    ap.add_argument("--json", type=Path, help="also write every measurement here")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    from dip.core import compute

    args.overrides = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.set)}

    device = compute.pick_device(args.device)
    if device.type not in DEFAULT_MODES:
        sys.exit(f"bench_fit: device {device.type} is not supported (cpu or cuda)")
    gpu = device.type == "cuda"
    args.threads = args.threads or compute.default_threads()
    if args.quick:
        args.sizes = args.sizes or [64]
        args.modes = args.modes or ["fp32", "bf16-cl"]
        args.repeats = args.repeats or 2
        args.warmup = 1 if args.warmup is None else args.warmup
    args.sizes = sorted(args.sizes or [256, 512])
    args.modes = args.modes or DEFAULT_MODES[device.type]
    if not gpu and any(mode_of(m)[0].cuda_only for m in args.modes):
        sys.exit("bench_fit: tf32 and -graph modes exist only on CUDA")
    if REFERENCE not in args.modes:
        args.modes.insert(0, REFERENCE)
    args.repeats = args.repeats or (30 if gpu else 3)
    args.warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    compute.configure(device, args.threads, "fp32", deterministic=False)  # threads + cudnn.benchmark
    dtypes = sorted({mode_of(m)[0].dtype for m in args.modes}, key=["fp32", "tf32", "bf16"].index)
    gemm = GemmPeak(device, dtypes, args.gemm_n or (8192 if gpu else (1024 if args.quick else 2048)))
    meta = {"device_name": compute.device_name(device) if gpu else cpu_name(),
            "torch": torch.__version__, "threads": args.threads, "repeats": args.repeats, "preset": args.preset,
            "overrides": args.overrides,
            "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="bench_fit-") as tmp:
        rows = bench(args.sizes, args.modes, args, device, gemm, Path(tmp))
    meta["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print_table(rows, gemm, device, meta)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "gemm_s": gemm.times, "gemm_n": gemm.n, "rows": rows},
                                        indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
