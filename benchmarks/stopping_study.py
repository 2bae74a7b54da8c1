"""The stopping study: from a profile's metrics.csv, how far final / EMA / early stop are from the oracle, and
what stopping saves.

    .venv/bin/python -m benchmarks.stopping_study results/quick/metrics.csv      # markdown to stdout

Per (task, image), over seeds: the mean PSNR of the final iterate (the claim), of the output average (EMA) and of
the early-stopped output (ES-EMV), each one's mean gap to the oracle (the best evaluation or final output, picked
with the ground truth), the mean minimum-variance iteration t*, how many seeds the rule fired in, and the share of
the iterations a `--stop auto` run would have saved (1 − fire iteration / iterations, over the seeds it fired in).
A last row pools every fit. No ground truth enters the rule; the ground truth only scores it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def study(metrics: pd.DataFrame) -> pd.DataFrame:
    m = metrics.copy()
    for col in ("psnr", "psnr_ema", "psnr_es"):
        m[f"{col}_gap"] = m[col] - m["psnr_best"]
    m["fired"] = m["es_fired_at"].notna()
    m["saved"] = (1 - m["es_fired_at"] / m["iterations"]).where(m["fired"])
    m["es_minus_oracle_iter"] = m["es_iter"] - m["psnr_best_iter"]

    def summarise(g: pd.DataFrame) -> pd.Series:
        return pd.Series({
            "n": len(g), "final": g["psnr"].mean(), "ema": g["psnr_ema"].mean(), "es": g["psnr_es"].mean(),
            "oracle": g["psnr_best"].mean(), "final_gap": g["psnr_gap"].mean(), "ema_gap": g["psnr_ema_gap"].mean(),
            "es_gap": g["psnr_es_gap"].mean(), "es_iter": g["es_iter"].mean(), "oracle_iter": g["psnr_best_iter"].mean(),
            "fired": f"{int(g['fired'].sum())}/{len(g)}", "saved": g["saved"].mean(),
        })

    rows = [summarise(g).rename(f"{t}/{i}") for (t, i), g in m.groupby(["task", "image"], sort=False)]
    rows.append(summarise(m).rename("all fits"))
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.stopping_study", description=__doc__.splitlines()[0])
    ap.add_argument("metrics", type=Path, help="results/<profile>/metrics.csv (from dip report)")
    args = ap.parse_args(argv)
    try:
        metrics = pd.read_csv(args.metrics)
    except (OSError, pd.errors.ParserError) as e:
        print(f"stopping_study: {args.metrics}: {e}", file=sys.stderr)
        return 2
    missing = {"psnr_ema", "psnr_es", "es_iter", "es_fired_at"} - set(metrics.columns)
    if missing:
        print(f"stopping_study: {args.metrics}: no {', '.join(sorted(missing))} (fits made before early stopping)",
              file=sys.stderr)
        return 2
    t = study(metrics)
    show = t.copy()
    for c in ("final", "ema", "es", "oracle"):
        show[c] = show[c].map("{:.2f}".format)
    for c in ("final_gap", "ema_gap", "es_gap"):
        show[c] = show[c].map("{:+.2f}".format)
    for c in ("es_iter", "oracle_iter"):
        show[c] = show[c].map("{:.0f}".format)
    show["saved"] = show["saved"].map(lambda v: "—" if pd.isna(v) else f"{100 * v:.0f}%")
    show["n"] = show["n"].astype(int)
    print(show.rename_axis("task/image").reset_index().to_markdown(index=False, disable_numparse=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
