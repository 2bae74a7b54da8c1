"""What each CPU speed-up in dip.model gives: the same fit iteration with single changes switched off.

    .venv/bin/python benchmarks/ablation.py --size 512 --threads 1 --repeats 3
    DIP_MALLOC_TUNE=0 .venv/bin/python benchmarks/ablation.py --size 512 --threads 1   # glibc's default allocator

A configuration is BASE[+FLAGS]: BASE is fp32 (NCHW), fp32cl or bf16cl (bf16 autocast, channels-last), and
FLAGS turn on, from dip.model, P (reflection padding outside CPU autocast), K (no pad copy for 1x1
convolutions), H (dense channels-last gradient into the upsample); a missing letter is switched off by
monkeypatching for that configuration's iterations. All configurations live in this one process (real
:class:`dip.fit.Fit` objects via bench_fit's Worker) and take turns, one iteration each, reversing the order
every round. The allocator fix (dip.runtime.keep_freed_memory) is process-wide: compare two runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fit import MODES, Worker  # noqa: E402  (also puts src/ on the path)

from dip import model  # noqa: E402

ORIGINAL = {"P": (model.ReflectConv2d, "_conv_forward", nn.Conv2d._conv_forward),
            "H": (model, "_sliced_channels_last", lambda y: False)}
CURRENT = {k: getattr(obj, name) for k, (obj, name, _) in ORIGINAL.items()}
BASES = {"fp32": "fp32", "fp32cl": "fp32-cl", "bf16cl": "bf16-cl"}


def select(flags: str) -> None:
    """Install the current code for the flags given and the original behaviour for the others (P, H)."""
    for k, (obj, name, original) in ORIGINAL.items():
        setattr(obj, name, CURRENT[k] if k in flags else original)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--configs", nargs="+", default=["fp32", "fp32+K", "fp32cl+KH", "bf16cl", "bf16cl+P",
                                                      "bf16cl+PK", "bf16cl+PKH"])
    args = ap.parse_args(argv)
    workers = {}
    tmp = Path(tempfile.mkdtemp(prefix="ablation-"))
    for cfg in args.configs:
        base, _, flags = cfg.partition("+")
        w = Worker(MODES[BASES[base]], "cpu", args.threads, "table1", {}, tmp)
        select(flags)
        w.setup(args.size, warmup=0)
        if "K" not in flags:  # back to nn.Conv2d's behaviour: a (copying) zero-width reflection pad for 1x1
            for m in w.fit.net.modules():
                if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m is not w.fit.net.head[0]:
                    m.padding_mode = "reflect"
        w.step()  # warm-up
        workers[cfg] = (w, flags)
    times: dict[str, list[float]] = {c: [] for c in workers}
    for r in range(args.repeats):
        for cfg in (args.configs if r % 2 == 0 else args.configs[::-1]):
            w, flags = workers[cfg]
            select(flags)
            t0 = time.perf_counter()
            w.step()
            times[cfg].append(time.perf_counter() - t0)
    select("PH")
    ref = min(times[args.configs[0]])
    from dip import runtime

    print(f"\n{args.size}x{args.size}, {args.threads} thread(s), allocator fix "
          f"{'on' if runtime.keep_freed_memory() else 'off'}; best of {args.repeats} interleaved\n")
    print("| configuration | s/iter (best) | s/iter (median) | speed-up vs first (best) |\n|---|---|---|---|")
    for cfg, ts in times.items():
        print(f"| {cfg} | {min(ts):.3f} | {statistics.median(ts):.3f} | {ref / min(ts):.2f}x |")


if __name__ == "__main__":
    main()
