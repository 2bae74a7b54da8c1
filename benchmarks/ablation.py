"""What each CPU speed-up in dip.core.network gives: the same fit iteration with single changes switched off.

    .venv/bin/python -m benchmarks.ablation --size 512 --threads 1 --repeats 3
    DIP_MALLOC_TUNE=0 .venv/bin/python -m benchmarks.ablation --size 512 --threads 1   # glibc's default allocator

A configuration is MODE[+FLAGS]: MODE is one of bench_fit's modes (:data:`benchmarks.modes.MODES`; fp32,
fp32-cl, bf16-cl, ...), and FLAGS turn on, from dip.core.network, P (reflection padding outside CPU autocast), K (no pad
copy for 1x1 convolutions), H (dense channels-last gradient into the upsample); a missing letter is switched
off: P and K in that configuration's network (its ReflectConv2d layers become plain nn.Conv2d; its 1x1
convolutions pad again), H by monkeypatching for that configuration's iterations. All configurations live in
this one process (real :class:`dip.engine.fit.Fit` objects via :class:`benchmarks.worker.Worker`) and take turns, one
iteration each, reversing the order every round. The allocator fix (dip.core.compute.keep_freed_memory) is
process-wide: compare two runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from torch import nn

from benchmarks.modes import MODES
from benchmarks.worker import Worker
from dip.core import network as model

# H is the only switch that is not a property of the network; dip.core.network has no public name for its test yet.
SLICED_CHANNELS_LAST = model.sliced_channels_last


def select(flags: str) -> None:
    """Install the current code if H is among the flags, the original behaviour (no dense gradient) if not."""
    model.sliced_channels_last = SLICED_CHANNELS_LAST if "H" in flags else (lambda y: False)


def switch_off(net: nn.Module, flags: str) -> None:
    """Give ``net`` the original behaviour for P and K where they are not among the flags."""
    for m in net.modules():
        if "P" not in flags and isinstance(m, model.ReflectConv2d):
            m.__class__ = nn.Conv2d  # same parameters; pads inside CPU autocast, as nn.Conv2d does
        if "K" not in flags and isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m is not net.head[0]:
            m.padding_mode = "reflect"  # nn.Conv2d's behaviour: a (copying) zero-width reflection pad for 1x1


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--configs", nargs="+", default=["fp32", "fp32+K", "fp32-cl+KH", "bf16-cl", "bf16-cl+P",
                                                      "bf16-cl+PK", "bf16-cl+PKH"])
    args = ap.parse_args(argv)
    for cfg in args.configs:
        base, _, flags = cfg.partition("+")
        if base not in MODES or set(flags) - set("PKH"):
            ap.error(f"configuration {cfg!r}: MODE[+FLAGS] with MODE of {', '.join(MODES)} and FLAGS of P, K, H")
    workers = {}
    with tempfile.TemporaryDirectory(prefix="ablation-") as tmp:
        for cfg in args.configs:
            base, _, flags = cfg.partition("+")
            w = Worker(MODES[base], "cpu", args.threads, "table1", {}, Path(tmp))
            w.setup(args.size, warmup=0)
            switch_off(w.fit.net, flags)
            select(flags)
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
        select("H")
        for w, _ in workers.values():
            w.fit.close()
    ref = min(times[args.configs[0]])
    from dip.core import compute

    print(f"\n{args.size}x{args.size}, {args.threads} thread(s), allocator fix "
          f"{'on' if compute.keep_freed_memory() else 'off'}; best of {args.repeats} interleaved\n")
    print("| configuration | s/iter (best) | s/iter (median) | speed-up vs first (best) |\n|---|---|---|---|")
    for cfg, ts in times.items():
        print(f"| {cfg} | {min(ts):.3f} | {statistics.median(ts):.3f} | {ref / min(ts):.2f}x |")


if __name__ == "__main__":
    main()
