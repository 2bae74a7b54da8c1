"""Is "ours vs the authors' code" a property of the method or of the one iterate that is scored?

Reads a results folder made with ``reference: true`` (our fits in ``fits/``, the authors' code in ``reference/``)
and compares the two engines over seeds (:mod:`dip.report.stats`: Welch per image, images as the unit overall) on
several readings of the same fits, not only the final iterate that ``parity.csv`` scores:

- ``final``: output.png after the last step (parity.csv's f(z) row);
- ``one step earlier``: the curve's evaluation before the last step (iteration T-1);
- ``EMA``: the average of the outputs (output_ema.png);
- ``oracle``: the best evaluation (diagnostic);
- ``mean of the last 300``: the mean PSNR of the curve's evaluations at iterations >= T - 300.

    python -m benchmarks.parity_robustness results/quick
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from dip.report import stats


def readings(fit: Path) -> dict[str, float]:
    """The five readings of one fit (see the module docstring)."""
    m = json.loads((fit / "metrics.json").read_text())
    curve = pd.read_csv(fit / "curve.csv")
    total = int(m["iterations"])
    return {"final": m["psnr"], "one step earlier": float(curve.loc[curve["iteration"] == total - 1, "psnr"].iloc[0]),
            "EMA": m["psnr_ema"], "oracle": m["psnr_best"],
            "mean of the last 300": float(curve.loc[curve["iteration"] >= total - 300, "psnr"].mean())}


def collect(results: Path) -> pd.DataFrame:
    rows = []
    for side, folder in (("ours", "fits"), ("authors", "reference")):
        for metrics in sorted((results / folder).glob("*/*/seed*/metrics.json")):
            task, image, seed = metrics.parts[-4], metrics.parts[-3], metrics.parts[-2]
            rows.append({"side": side, "task": task, "image": image, "seed": seed, **readings(metrics.parent)})
    if not rows:
        raise SystemExit(f"{results}: no fits under fits/ and reference/ (run with --config reference=true)")
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, help="results/<profile> of a run with reference: true")
    args = p.parse_args(argv)
    d = collect(args.results)
    print(f"{args.results}: {int((d.side == 'ours').sum())} fits of ours, {int((d.side == 'authors').sum())} "
          "of the authors' code\n")
    print("| reading | Δ ours − authors f(z), mean over images [95% CI] | verdict | images with Δ > 0 |")
    print("|---|---|---|---|")
    for reading in ("final", "one step earlier", "EMA", "oracle", "mean of the last 300"):
        table = stats.compare(d, keys=("task", "image"), side="side", value=reading, a="ours", b="authors")
        o = stats.overall(table).iloc[0]
        print(f"| {reading} | {o['delta']:+.3f} [{o['ci_low']:+.3f}, {o['ci_high']:+.3f}] | {o['verdict']} | "
              f"{int((table['delta'] > 0).sum())} of {len(table)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
