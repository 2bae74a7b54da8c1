"""Table 1 against the paper: per image the mean ± std over seeds, Δ = ours − paper and a verdict (paper
profile only), an average row, its Markdown rendering, and the flat summary that `dvc metrics show` reads."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from dip.data.config import FIG7_TASK, PAPER_PROFILE, TABLE1_TASK, profile_of
from dip.report import classical as classical_table

TOLERANCE_EPS = 1e-9  # a difference equal to the tolerance passes despite float rounding


# The four numbers of every fit, side by side: the claim and what a user could have had instead.
OUTCOMES = {"psnr": "psnr", "psnr_ema": "psnr_ema", "psnr_es": "psnr_es", "psnr_best": "psnr_best_oracle"}


def table1(metrics: pd.DataFrame, cfg: dict[str, Any], profile: str) -> pd.DataFrame:
    """Per Table 1 image (config order): paper; the final iterate (the claim: mean/std/n over seeds, Δ, verdict);
    the output average (EMA), the early stop (ES, with its mean iteration) and the oracle, each mean ± std, and
    each one's gap to the oracle; then an 'Average' row (means over the images that have fits)."""
    paper = cfg["paper"]["table1_psnr"]
    tol = float(cfg["paper"]["tolerance_db"])
    comparable = profile == PAPER_PROFILE
    images = cfg["tasks"][TABLE1_TASK]["images"]
    t1 = metrics[metrics["task"] == TABLE1_TASK]
    # each fit's gap to its own oracle, so an outcome that older fits lack is compared on the fits that have it
    t1 = t1.assign(**{f"gap_{column}": t1[column] - t1["psnr_best"] for column in OUTCOMES})
    g = t1.groupby("image")
    cols = {"paper_psnr": pd.Series({im: float(paper[im]) for im in images}),
            "n_seeds": g["seed"].nunique(), "ssim_mean": g["ssim"].mean(), "es_iter_mean": g["es_iter"].mean()}
    for column, name in OUTCOMES.items():
        cols[f"{name}_mean"] = g[column].mean()
        cols[f"{name}_std"] = g[column].std(ddof=1)
        cols[f"{name}_n"] = g[column].count()  # fits from before EMA/ES lack them: fewer than n_seeds
        cols[f"{name}_gap_to_oracle"] = g[f"gap_{column}"].mean()
    t = pd.DataFrame(cols).reindex(images).astype(float)
    t["n_seeds"] = t["n_seeds"].fillna(0).astype("Int64")
    present = t["n_seeds"] > 0
    # over the images that have fits, so an incomplete run is compared with the paper on the same images; an
    # outcome some images lack is averaged over those that have it, and its _n counts them
    avg = t.loc[present].drop(columns="n_seeds").mean().to_frame("Average").T
    avg[[c for c in avg.columns if c.endswith("_std")]] = np.nan
    for name in OUTCOMES.values():
        avg[f"{name}_n"] = float(t.loc[present, f"{name}_mean"].notna().sum())
    avg["n_seeds"] = pd.NA
    t = pd.concat([t, avg.astype({"n_seeds": "Int64"})])
    t["delta_db"] = (t["psnr_mean"] - t["paper_psnr"]) if comparable else np.nan
    complete = bool(present.all())

    def verdict(name: str, r: pd.Series) -> str:
        if not comparable:
            return f"not comparable (profile {profile})"
        if name != "Average" and r["n_seeds"] == 0:
            return "no fits"
        d = r["delta_db"]
        v = "match" if abs(d) <= tol + TOLERANCE_EPS else f"off by {d:+.2f} dB"
        if name == "Average" and not complete:
            v += f" (incomplete: {int(present.sum())} of {len(images)} images, paper averaged over the same)"
        return v

    t["verdict"] = [verdict(name, r) for name, r in t.iterrows()]
    t.insert(len(t.columns), "profile", profile)
    t = t.rename_axis("image").reset_index()
    outcome_cols = [f"{n}_{k}" for n in ("psnr_ema", "psnr_es", "psnr_best_oracle")
                    for k in ("mean", "std", "n", "gap_to_oracle")]
    return t[["image", "paper_psnr", "psnr_mean", "psnr_std", "n_seeds", "delta_db", "verdict", "ssim_mean",
              "psnr_gap_to_oracle", *outcome_cols, "es_iter_mean", "profile"]]


def fmt(v: float, spec: str = ".2f") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _runs(df: pd.DataFrame) -> str:
    """'fp32 on cpu (1 thread)' for each distinct precision/device/threads among the fits."""
    combos = df[["precision", "device", "threads"]].drop_duplicates().itertuples(index=False)
    return "; ".join(f"{p} on {d} ({t} thread{'s' if t != 1 else ''})" for p, d, t in combos) or "—"


def _header(metrics: pd.DataFrame, cfg: dict[str, Any], profile: str) -> list[str]:
    """The lines above Table 1: what the numbers are, the seeds and runs, and how to read each column."""
    desc = str(profile_of(cfg, profile).get("description", "")).strip()
    t1 = metrics[metrics["task"] == TABLE1_TASK]
    seeds = ", ".join(str(s) for s in sorted(t1["seed"].unique())) or "—"
    tol = cfg["paper"]["tolerance_db"]
    lines = [f"# Table 1 (inpainting, 50% of pixels missing): profile `{profile}`", ""]
    if profile != PAPER_PROFILE:
        lines += [f"These numbers come from the reduced profile `{profile}` ({desc}) and are NOT comparable with "
                  f"the paper's Table 1; only the `{PAPER_PROFILE}` profile is.", ""]
    lines += [
        f"- Profile: `{profile}`: {desc}",
        f"- Seeds: {seeds} (mean ± sample std over seeds, ddof=1; n seeds per image in the table)",
        f"- Precision / device: {_runs(t1)}",
        "- The claim is the **final iterate**: `psnr` of output.png against the ground truth.",
        "- Beside it, what a user without the ground truth could have had instead: **EMA**, the exponential "
        "moving average of the outputs (weight 0.99 unless the profile overrides it), and **early stop**, the "
        "ES-EMV rule's minimum-variance output (its mean iteration in brackets; docs/stopping.md). **Oracle**: "
        "the best evaluation or the final output, picked using the ground truth; a diagnostic, never the claim.",
        "- Average row: the gap of each to the oracle in brackets, fit by fit against that fit's own oracle. Fits "
        "recorded before EMA and early stopping existed lack those two: a cell then says how many seeds (or "
        "images) it covers.",
        (f"- Verdict: `match` when |Δ| ≤ {tol} dB, Δ = ours − paper." if profile == PAPER_PROFILE else
         f"- No Δ or verdict: profile `{profile}` is not comparable with the paper."),
        "- Average: mean over images of the per-image means; the paper's average over the same images.",
        "",
    ]
    return lines


def table1_markdown(table: pd.DataFrame, metrics: pd.DataFrame, cfg: dict[str, Any], profile: str) -> str:
    """Table 1 as Markdown: a header stating what the numbers are, then the table (pandas.to_markdown)."""
    lines = _header(metrics, cfg, profile)
    n_images = int((table.loc[table["image"] != "Average", "n_seeds"] > 0).sum())

    def pm(name: str) -> list[str]:
        """mean ± std, and how many seeds (or, in the Average row, images) it covers when some lack it."""
        cells = []
        for im, m, sd, n, n_seeds in zip(table["image"], table[f"{name}_mean"], table[f"{name}_std"],
                                         table.get(f"{name}_n", table["n_seeds"]), table["n_seeds"]):
            cell = fmt(m) if math.isnan(sd) else f"{m:.2f} ± {sd:.2f}"
            of, unit = (n_images, "images") if im == "Average" else (n_seeds, "seeds")
            if not (math.isnan(m) or pd.isna(of) or pd.isna(n)) and 0 < n < of:
                cell += f" ({int(n)} of {int(of)} {unit})"
            cells.append(cell)
        return cells

    def with_gap(name: str, cells: list[str]) -> list[str]:
        gaps = table[f"{name}_gap_to_oracle"]
        return [f"{c} ({fmt(gap, '+.2f')})" if im == "Average" and not math.isnan(gap) else c
                for c, gap, im in zip(cells, gaps, table["image"])]

    es_iter = table["es_iter_mean"].map(lambda v: "" if math.isnan(v) else f" [{v:.0f}]")
    show = pd.DataFrame({
        "Image": table["image"],
        "Paper PSNR (dB)": table["paper_psnr"].map(fmt),
        "Ours final (the claim), mean ± std": with_gap("psnr", pm("psnr")),
        "n seeds": table["n_seeds"].map(lambda v: "—" if pd.isna(v) else str(v)),
        "Δ (dB)": table["delta_db"].map(lambda v: fmt(v, "+.2f")),
        "Verdict": table["verdict"],
        "SSIM": table["ssim_mean"].map(lambda v: fmt(v, ".4f")),
        "EMA": with_gap("psnr_ema", pm("psnr_ema")),
        "Early stop [iteration]": [c + i for c, i in zip(with_gap("psnr_es", pm("psnr_es")), es_iter)],
        "Oracle (diagnostic)": pm("psnr_best_oracle"),
    })
    show, lines, align = classical_table.markdown(show, lines, table)  # + the paper's baseline row, the fill
    return "\n".join(lines) + "\n" + show.to_markdown(index=False, disable_numparse=True, colalign=align) + "\n"


def _num(v: Any, nd: int = 4) -> float | None:
    """A JSON-safe rounded float (NaN -> None)."""
    if v is None or pd.isna(v):
        return None
    return round(float(v), nd)


def summary(metrics: pd.DataFrame, table: pd.DataFrame, profile: str) -> dict[str, Any]:
    """Flat numbers for `dvc metrics show`."""
    per_image = table[table["image"] != "Average"].set_index("image")
    avg = table.set_index("image").loc["Average"]
    fig7 = metrics.loc[metrics["task"] == FIG7_TASK, "psnr"]
    return {
        "profile": profile,
        "n_fits": int(len(metrics)),
        "table1_mean_psnr": _num(avg["psnr_mean"]),
        "table1_mean_psnr_ema": _num(avg["psnr_ema_mean"]),
        "table1_mean_psnr_es": _num(avg["psnr_es_mean"]),
        "table1_mean_psnr_oracle": _num(avg["psnr_best_oracle_mean"]),
        "table1_paper_mean_psnr": _num(avg["paper_psnr"]),
        "table1_mean_delta_vs_paper": _num(avg["delta_db"]) if profile == PAPER_PROFILE else None,
        "table1": {im: _num(v) for im, v in per_image["psnr_mean"].items() if not math.isnan(v)},
        "fig7_text_psnr": _num(fig7.mean()) if len(fig7) else None,
        "total_wall_seconds": _num(metrics["wall_seconds"].sum(), 2),
        "mean_seconds_per_iter": _num(metrics["seconds_per_iter"].mean(), 6),
    }
