"""`dip report`: aggregate fit directories into the profile's tables, curves and summary.

`dip report` reads each fit's ``metrics.json`` and ``curve.csv`` (:mod:`dip.report.results`) and writes, into ``--out``:
metrics.csv, table1.md, table1.csv (:mod:`dip.report.table1`; with ``--baselines`` the classical fill beside ours,
:mod:`dip.report.classical`, and classical_metrics.csv listing the fills), curves.csv, curves.png, summary.json and
parity.csv. With ``--reference-fits`` (the authors' code, :mod:`dip.report.parity`) parity.csv compares ours with them over seeds,
reference_metrics.csv lists their fits and table1.md gets a section "Ours vs the authors' code"; without, parity.csv
has only its header. All files are
rendered to temporary names in ``--out`` first and moved into place together at the end
(:class:`dip.data.atomic.StagedFiles`), so a failure leaves the old set.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dip.cliconv import Parser, output_option
from dip.data.atomic import StagedFiles
from dip.data.config import load_config, profile_of
from dip.errors import DipError
from dip.report import stats
from dip.report.classical import add_classical, classical_summary, collect_baselines
from dip.report.parity import KEYS as PARITY_KEYS
from dip.report.parity import parity, parity_markdown, parity_summary
from dip.report.results import CURVES_COLUMNS, collect
from dip.report.table1 import fmt, summary, table1, table1_markdown

__all__ = ["main", "write_report"]


def plot_curves(curves: pd.DataFrame, metrics: pd.DataFrame, profile: str, path: Path) -> None:
    """PSNR vs iteration, one panel per (task, image): mean over seeds and the min–max band, and a dashed line
    at each seed's early-stopping point (``es_iter``, chosen without the ground truth). Agg, no pyplot."""
    from matplotlib.figure import Figure

    panels = list(dict.fromkeys(zip(curves["task"], curves["image"])))
    ncols = min(4, max(len(panels), 1))
    nrows = max(1, math.ceil(len(panels) / ncols))
    fig = Figure(figsize=(2.8 * ncols, 2.2 * nrows + 0.5), dpi=110, layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (task, image) in zip(axes, panels):
        c = curves[(curves["task"] == task) & (curves["image"] == image)].dropna(subset=["psnr"])
        s = c.groupby("iteration")["psnr"].agg(["mean", "min", "max"])
        if s.empty:
            ax.text(0.5, 0.5, "no PSNR (no ground truth)", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.fill_between(s.index, s["min"], s["max"], alpha=0.3, linewidth=0)
            ax.plot(s.index, s["mean"], linewidth=1.2)
            fits = metrics[(metrics["task"] == task) & (metrics["image"] == image)]
            for j, es_iter in enumerate(pd.to_numeric(fits["es_iter"], errors="coerce").dropna()):
                ax.axvline(es_iter, color="tab:red", linestyle="--", linewidth=0.8, alpha=0.8,
                           label="early stop (ES-EMV)" if j == 0 else None)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6, loc="lower right")
        ax.set_title(f"{task} / {image} (n={c['seed'].nunique()})", fontsize=8)
        ax.set_xlabel("iteration", fontsize=7)
        ax.set_ylabel("PSNR (dB)", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(True, alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    fig.suptitle(f"PSNR vs iteration, profile {profile}: mean over seeds, band = min–max", fontsize=10)
    fig.savefig(path, format="png", metadata={"Software": None})


def _csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, lineterminator="\n")


def write_report(metrics: pd.DataFrame, curves: pd.DataFrame, cfg: dict[str, Any], profile: str,
                 out: Path, reference: pd.DataFrame | None = None,
                 baselines: pd.DataFrame | None = None) -> dict[str, Any]:
    """Write every `dip report` output into ``out`` (all or none); returns the summary. ``reference``: the
    metrics of the authors' code's fits, compared with ours over seeds; ``baselines``: the classical fills
    beside the fits (:func:`dip.report.classical.collect_baselines`), set beside ours in Table 1."""
    table = add_classical(table1(metrics, cfg, profile), metrics, baselines, cfg)
    summ = summary(metrics, table, profile)
    summ.update(classical_summary(table))
    markdown = table1_markdown(table, metrics, cfg, profile)
    par = pd.DataFrame(columns=[*PARITY_KEYS, *stats.STAT_COLUMNS])
    if reference is not None:
        par = parity(metrics, reference, cfg)
        markdown += parity_markdown(par, cfg)
        summ.update(parity_summary(par))
    if out.exists() and not out.is_dir():
        raise DipError(out, "exists and is not a directory")
    with StagedFiles() as st:
        _csv(metrics, st.path(out / "metrics.csv"))
        _csv(table.round(4), st.path(out / "table1.csv"))
        st.path(out / "table1.md").write_text(markdown)
        stats.write_csv(par, st.path(out / "parity.csv"), keys=PARITY_KEYS)
        if reference is not None:
            _csv(reference, st.path(out / "reference_metrics.csv"))
        if baselines is not None:
            _csv(baselines, st.path(out / "classical_metrics.csv"))
        _csv(curves[CURVES_COLUMNS], st.path(out / "curves.csv"))
        plot_curves(curves, metrics, profile, st.path(out / "curves.png"))
        st.path(out / "summary.json").write_text(json.dumps(summ, indent=2, allow_nan=False) + "\n")
    return summ


def main(argv: list[str] | None = None) -> int:
    """`dip report`."""
    p = Parser(prog="dip report", description="Aggregate fit directories into metrics.csv, "
                                "Table 1 (md + csv), curves (png + csv) and summary.json.")
    p.add_argument("--config", type=Path, default=Path("config/config.yaml"),
                   help="pipeline config (relative to the working directory)")
    p.add_argument("--profile", required=True, help="the profile every fit must be tagged with")
    p.add_argument("--fits", type=Path, nargs="+", required=True, metavar="DIR",
                   help="fit directories (each with metrics.json and curve.csv)")
    p.add_argument("--reference-fits", type=Path, nargs="+", metavar="DIR",
                   help="fit directories of the authors' code (dip fit --engine authors) on the same inputs: "
                        "compared with --fits over seeds in parity.csv and table1.md")
    p.add_argument("--baselines", type=Path, nargs="+", metavar="DIR",
                   help="classical-fill folders (dip baseline) beside the fits, each on its fit's mask (checked): "
                        "set beside ours in Table 1 (DIP − classical over seeds)")
    output_option(p, "output directory, e.g. results/<profile>")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    profile_of(cfg, args.profile)
    metrics, curves = collect(args.fits, args.profile, cfg)
    reference = collect(args.reference_fits, args.profile, cfg, engine="authors")[0] if args.reference_fits else None
    baselines = collect_baselines(args.baselines, args.fits, args.profile, cfg) if args.baselines else None
    s = write_report(metrics, curves, cfg, args.profile, args.output, reference, baselines)
    d = s["table1_mean_delta_vs_paper"]
    delta = "" if d is None else f", Δ vs paper {d:+.2f} dB"
    print(f"{args.output}: {s['n_fits']} fits of profile {args.profile}; Table 1 mean PSNR "
          f"{fmt(s['table1_mean_psnr'])} dB over {len(s['table1'])} images (paper on the same images "
          f"{fmt(s['table1_paper_mean_psnr'])}){delta}")
    if baselines is not None:
        low, high = (fmt(s[f"table1_dip_minus_classical_ci_{k}"], "+.2f") for k in ("low", "high"))
        print(f"{args.output}/table1.md: {len(baselines)} classical fills; mean Δ DIP − classical "
              f"{fmt(s['table1_dip_minus_classical'], '+.2f')} dB [{low}, {high}] over the images")
    if reference is not None:
        print(f"{args.output}/parity.csv: {len(reference)} reference fits; mean Δ ours − authors f(z) "
              f"{fmt(s['parity_mean_delta_vs_authors'], '+.2f')} dB [{fmt(s['parity_ci_low'], '+.2f')}, "
              f"{fmt(s['parity_ci_high'], '+.2f')}] over {s['parity_images']} images ({s['parity_verdict']})")
    return 0
