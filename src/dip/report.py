"""`dip report`: aggregate fit directories into the profile's tables, curves and summary; `dip compare`: the CI gate.

`dip report` reads each fit's ``metrics.json`` and ``curve.csv`` (contract: docs/architecture.md) and writes, into
``--out``: metrics.csv, table1.md, table1.csv, curves.csv, curves.png and summary.json. All files are rendered to
temporary names in ``--out`` first and moved into place together at the end, so a failure leaves the old set.

`dip compare` joins a metrics.csv with a baseline on (task, image, seed) and fails (exit 1) when a final-iterate
PSNR moved by more than the tolerance or a row is missing on either side.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from dip.errors import DipError
from dip.io import new_temp

TABLE1_TASK = "table1"
FIG7_TASK = "fig7_text"
PAPER_PROFILE = "paper"
KEY = ["task", "image", "seed"]
METRICS_COLUMNS = [
    "task", "image", "seed", "psnr", "ssim", "psnr_best", "psnr_best_iter", "psnr_masked", "iterations",
    "seconds_per_iter", "wall_seconds", "backtracks", "device", "precision", "threads", "profile", "preset",
    "height", "width", "image_sha256",
]
CURVES_COLUMNS = ["task", "image", "seed", "iteration", "psnr", "psnr_masked", "loss", "profile"]
_CURVE_FILE_COLUMNS = CURVES_COLUMNS[3:7]  # the columns read from each fit's curve.csv
BASELINE_COLUMNS = ["task", "image", "seed", "psnr", "ssim", "iterations", "device", "precision", "profile",
                    "image_sha256"]
_EPS = 1e-9  # a difference equal to the tolerance passes despite float rounding
_REQUIRED = [c for c in METRICS_COLUMNS if c not in ("task", "image", "profile", "image_sha256")] + ["tags"]


# ---------------------------------------------------------------------------------------------- inputs
def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """The pipeline configuration (config/config.yaml) as a dict, with the keys the report needs checked."""
    p = Path(path)
    cfg = _read_mapping(p, yaml.safe_load, yaml.YAMLError, "YAML", "no such file",
                        "expected a mapping at the top level")
    for key in ("tasks", "paper", "profiles"):
        if not isinstance(cfg.get(key), dict):
            raise DipError(p, f"missing or invalid section {key!r}")
    if TABLE1_TASK not in cfg["tasks"] or not {"table1_psnr", "tolerance_db"} <= set(cfg["paper"]):
        raise DipError(p, f"needs tasks.{TABLE1_TASK}, paper.table1_psnr and paper.tolerance_db")
    return cfg


def profile_of(cfg: dict[str, Any], profile: str) -> dict[str, Any]:
    """The named profile's section, or a DipError listing the known ones."""
    if profile not in cfg["profiles"]:
        raise DipError("--profile", f"unknown profile {profile!r} (known: {', '.join(cfg['profiles'])})")
    return cfg["profiles"][profile]


def load_fit_metrics(fit_dir: str | os.PathLike) -> dict[str, Any]:
    """A fit directory's metrics.json as a dict (DipError naming the file when missing or malformed)."""
    d = Path(fit_dir)
    if not d.is_dir():
        raise DipError(d, "fit directory does not exist")
    return _read_mapping(d / "metrics.json", json.loads, json.JSONDecodeError, "JSON",
                         "no such file (is the fit finished?)", "expected a JSON object")


def _read_mapping(p: Path, parse: Any, syntax_error: type[Exception], fmt: str, missing: str,
                  not_mapping: str) -> dict[str, Any]:
    """Parse a YAML/JSON file that must hold a mapping; every failure is a DipError naming the file."""
    try:
        data = parse(p.read_text())
    except FileNotFoundError:
        raise DipError(p, missing) from None
    except (OSError, UnicodeDecodeError) as e:
        raise DipError(p, f"unreadable ({e})") from None
    except syntax_error as e:
        raise DipError(p, f"not valid {fmt} ({e})") from None
    if not isinstance(data, dict):
        raise DipError(p, not_mapping)
    return data


def check_profile(m: dict[str, Any], where: Path, profile: str) -> None:
    """Refuse a fit whose tags.profile is not ``profile``: mixing profiles in one report is a bug."""
    tags = m.get("tags") or {}
    got = tags.get("profile") if isinstance(tags, dict) else None
    if got is None:
        raise DipError(where, "has no tags.profile (run `dip fit` with --tag profile=NAME)")
    if str(got) != profile:
        raise DipError(where, f"fit of profile {got!r} but --profile is {profile!r}: mixing profiles is a bug")


def _sha256(m: dict[str, Any]) -> str | None:
    image = (m.get("inputs") or {}).get("image")
    return image.get("sha256") if isinstance(image, dict) else image


def fit_row(m: dict[str, Any], where: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """One metrics.csv row from a fit's metrics.json, validated against the config's tasks and images."""
    missing = [k for k in _REQUIRED if k not in m]
    if missing:
        raise DipError(where, f"missing keys: {', '.join(missing)}")
    tags = m["tags"]
    task, image = tags.get("task"), tags.get("image")
    if task not in cfg["tasks"]:
        raise DipError(where, f"tags.task {task!r} is not a task of the config ({', '.join(cfg['tasks'])})")
    if image not in cfg["tasks"][task]["images"]:
        raise DipError(where, f"tags.image {image!r} is not an image of task {task!r}")
    if m["psnr"] is None:
        raise DipError(where, "psnr is null (the fit had no ground truth); pipeline fits must be scored")
    row = {k: m[k] for k in METRICS_COLUMNS if k in m}
    row.update(task=task, image=image, profile=tags["profile"], image_sha256=_sha256(m))
    return row


def read_curve(fit_dir: Path, task: str, image: str, seed: int, profile: str) -> pd.DataFrame:
    """A fit's curve.csv in long format (CURVES_COLUMNS: task, image, seed, iteration, ..., profile)."""
    p = fit_dir / "curve.csv"
    try:
        c = pd.read_csv(p)
    except FileNotFoundError:
        raise DipError(p, "no such file") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DipError(p, f"unreadable CSV ({e})") from None
    missing = [k for k in _CURVE_FILE_COLUMNS if k not in c.columns]
    if missing:
        raise DipError(p, f"missing columns: {', '.join(missing)}")
    c = c[_CURVE_FILE_COLUMNS].copy()
    c.insert(0, "seed", seed)
    c.insert(0, "image", image)
    c.insert(0, "task", task)
    c["profile"] = profile
    return c


def config_order(df: pd.DataFrame, cfg: dict[str, Any]) -> pd.DataFrame:
    """Rows sorted by task and image in config order, then seed (and iteration when present)."""
    tasks = list(cfg["tasks"])
    pos = {(t, im): j for t in tasks for j, im in enumerate(cfg["tasks"][t]["images"])}
    by = ["_t", "_i", "seed"] + (["iteration"] if "iteration" in df.columns else [])
    out = df.assign(_t=df["task"].map(tasks.index), _i=[pos[k] for k in zip(df["task"], df["image"])])
    out = out.sort_values(by, kind="stable")
    return out.drop(columns=["_t", "_i"]).reset_index(drop=True)


def collect(fits: list[Path], profile: str, cfg: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics, curves) DataFrames of all fits, checked for profile and duplicates, in config order."""
    rows, curves, seen = [], [], {}
    for d in fits:
        m = load_fit_metrics(d)
        where = Path(d) / "metrics.json"
        check_profile(m, where, profile)
        row = fit_row(m, where, cfg)
        key = (row["task"], row["image"], int(row["seed"]))
        if key in seen:
            raise DipError(d, f"duplicate fit {key} (also in {seen[key]})")
        seen[key] = d
        rows.append(row)
        curves.append(read_curve(Path(d), *key, row["profile"]))
    metrics = config_order(pd.DataFrame(rows, columns=METRICS_COLUMNS), cfg)
    return metrics, config_order(pd.concat(curves, ignore_index=True), cfg)


# ---------------------------------------------------------------------------------------------- Table 1
def table1(metrics: pd.DataFrame, cfg: dict[str, Any], profile: str) -> pd.DataFrame:
    """Per Table 1 image (config order): paper, ours mean/std/n over seeds, delta and verdict; then 'Average'."""
    paper = cfg["paper"]["table1_psnr"]
    tol = float(cfg["paper"]["tolerance_db"])
    comparable = profile == PAPER_PROFILE
    images = cfg["tasks"][TABLE1_TASK]["images"]
    t1 = metrics[metrics["task"] == TABLE1_TASK]
    g = t1.groupby("image")
    t = pd.DataFrame({
        "paper_psnr": pd.Series({im: float(paper[im]) for im in images}),
        "psnr_mean": g["psnr"].mean(), "psnr_std": g["psnr"].std(ddof=1), "n_seeds": g["seed"].nunique(),
        "ssim_mean": g["ssim"].mean(), "psnr_best_oracle_mean": g["psnr_best"].mean(),
    }).reindex(images)
    t["n_seeds"] = t["n_seeds"].fillna(0).astype("Int64")
    present = t["n_seeds"] > 0
    avg = pd.DataFrame({
        # over the images that have fits, so an incomplete run is compared with the paper on the same images
        "paper_psnr": [t.loc[present, "paper_psnr"].mean()], "psnr_mean": [t.loc[present, "psnr_mean"].mean()],
        "psnr_std": [np.nan], "n_seeds": [pd.NA],
        "ssim_mean": [t.loc[present, "ssim_mean"].mean()],
        "psnr_best_oracle_mean": [t.loc[present, "psnr_best_oracle_mean"].mean()],
    }, index=["Average"])
    t = pd.concat([t, avg.astype({"n_seeds": "Int64"})])
    t["delta_db"] = (t["psnr_mean"] - t["paper_psnr"]) if comparable else np.nan
    complete = bool(present.all())

    def verdict(name: str, r: pd.Series) -> str:
        if not comparable:
            return f"not comparable (profile {profile})"
        if name != "Average" and r["n_seeds"] == 0:
            return "no fits"
        d = r["delta_db"]
        v = "match" if abs(d) <= tol + _EPS else f"off by {d:+.2f} dB"
        if name == "Average" and not complete:
            v += f" (incomplete: {int(present.sum())} of {len(images)} images, paper averaged over the same)"
        return v

    t["verdict"] = [verdict(name, r) for name, r in t.iterrows()]
    t.insert(len(t.columns), "profile", profile)
    t = t.rename_axis("image").reset_index()
    return t[["image", "paper_psnr", "psnr_mean", "psnr_std", "n_seeds", "delta_db", "verdict", "ssim_mean",
              "psnr_best_oracle_mean", "profile"]]


def _fmt(v: float, spec: str = ".2f") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _runs(df: pd.DataFrame) -> str:
    """'fp32 on cpu (1 thread)' for each distinct precision/device/threads among the fits."""
    combos = df[["precision", "device", "threads"]].drop_duplicates().itertuples(index=False)
    return "; ".join(f"{p} on {d} ({t} thread{'s' if t != 1 else ''})" for p, d, t in combos) or "—"


def table1_markdown(table: pd.DataFrame, metrics: pd.DataFrame, cfg: dict[str, Any], profile: str) -> str:
    """Table 1 as Markdown: a header stating what the numbers are, then the table (pandas.to_markdown)."""
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
        "- `psnr_best` is an **oracle diagnostic** (the best iteration, picked using the ground truth); "
        "it is never the claim.",
        (f"- Verdict: `match` when |Δ| ≤ {tol} dB, Δ = ours − paper." if profile == PAPER_PROFILE else
         f"- No Δ or verdict: profile `{profile}` is not comparable with the paper."),
        "- Average: mean over images of the per-image means; the paper's average over the same images.",
        "",
    ]
    show = pd.DataFrame({
        "Image": table["image"],
        "Paper PSNR (dB)": table["paper_psnr"].map(_fmt),
        "Ours PSNR (dB), mean ± std": [
            _fmt(m) if math.isnan(s) else f"{m:.2f} ± {s:.2f}" for m, s in zip(table["psnr_mean"], table["psnr_std"])],
        "n seeds": table["n_seeds"].map(lambda v: "—" if pd.isna(v) else str(v)),
        "Δ (dB)": table["delta_db"].map(lambda v: _fmt(v, "+.2f")),
        "Verdict": table["verdict"],
        "SSIM": table["ssim_mean"].map(lambda v: _fmt(v, ".4f")),
        "psnr_best (oracle diagnostic, not the claim)": table["psnr_best_oracle_mean"].map(_fmt),
    })
    align = ("left", "right", "right", "right", "right", "left", "right", "right")
    return "\n".join(lines) + "\n" + show.to_markdown(index=False, disable_numparse=True, colalign=align) + "\n"


# ---------------------------------------------------------------------------------------------- curves
def plot_curves(curves: pd.DataFrame, profile: str, path: Path) -> None:
    """PSNR vs iteration, one panel per (task, image): mean over seeds and the min–max band (Agg, no pyplot)."""
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
        ax.set_title(f"{task} / {image} (n={c['seed'].nunique()})", fontsize=8)
        ax.set_xlabel("iteration", fontsize=7)
        ax.set_ylabel("PSNR (dB)", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(True, alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    fig.suptitle(f"PSNR vs iteration, profile {profile}: mean over seeds, band = min–max", fontsize=10)
    fig.savefig(path, format="png", metadata={"Software": None})


# ---------------------------------------------------------------------------------------------- summary
def _num(v: Any, nd: int = 4) -> float | None:
    """A JSON-safe rounded float (NaN -> None)."""
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else round(v, nd)


def summary(metrics: pd.DataFrame, table: pd.DataFrame, profile: str) -> dict[str, Any]:
    """Flat numbers for `dvc metrics show`."""
    per_image = table[table["image"] != "Average"].set_index("image")
    avg = table.set_index("image").loc["Average"]
    fig7 = metrics.loc[metrics["task"] == FIG7_TASK, "psnr"]
    return {
        "profile": profile,
        "n_fits": int(len(metrics)),
        "table1_mean_psnr": _num(avg["psnr_mean"]),
        "table1_paper_mean_psnr": _num(avg["paper_psnr"]),
        "table1_mean_delta_vs_paper": _num(avg["delta_db"]) if profile == PAPER_PROFILE else None,
        "table1": {im: _num(v) for im, v in per_image["psnr_mean"].items() if not math.isnan(v)},
        "fig7_text_psnr": _num(fig7.mean()) if len(fig7) else None,
        "total_wall_seconds": _num(metrics["wall_seconds"].sum(), 2),
        "mean_seconds_per_iter": _num(metrics["seconds_per_iter"].mean(), 6),
    }


# ---------------------------------------------------------------------------------------------- writing
class StagedFiles:
    """Render several outputs to temporary names beside them; move all into place together on success.

    >>> with StagedFiles() as st:
    ...     df.to_csv(st.path(out / "metrics.csv"))
    """

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []

    def path(self, final: str | os.PathLike) -> Path:
        """A fresh temporary path in ``final``'s directory (created if needed)."""
        tmp = new_temp(final)  # also removes the temporaries of a `dip report` that was killed
        self.pending.append((tmp, Path(final)))
        return tmp

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            for tmp, final in self.pending:
                os.replace(tmp, final)
        else:
            for tmp, _ in self.pending:
                tmp.unlink(missing_ok=True)


def _csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, lineterminator="\n")


def write_report(metrics: pd.DataFrame, curves: pd.DataFrame, cfg: dict[str, Any], profile: str,
                 out: Path) -> dict[str, Any]:
    """Write every `dip report` output into ``out`` (all or none); returns the summary."""
    table = table1(metrics, cfg, profile)
    summ = summary(metrics, table, profile)
    if out.exists() and not out.is_dir():
        raise DipError(out, "exists and is not a directory")
    with StagedFiles() as st:
        _csv(metrics, st.path(out / "metrics.csv"))
        _csv(table.round(4), st.path(out / "table1.csv"))
        st.path(out / "table1.md").write_text(table1_markdown(table, metrics, cfg, profile))
        _csv(curves[CURVES_COLUMNS], st.path(out / "curves.csv"))
        plot_curves(curves, profile, st.path(out / "curves.png"))
        st.path(out / "summary.json").write_text(json.dumps(summ, indent=2, allow_nan=False) + "\n")
    return summ


def main(argv: list[str] | None = None) -> int:
    """`dip report`."""
    p = argparse.ArgumentParser(prog="dip report", description="Aggregate fit directories into metrics.csv, "
                                "Table 1 (md + csv), curves (png + csv) and summary.json.")
    p.add_argument("--config", type=Path, default=Path("config/config.yaml"), help="pipeline config")
    p.add_argument("--profile", required=True, help="the profile every fit must be tagged with")
    p.add_argument("--fits", type=Path, nargs="+", required=True, metavar="DIR",
                   help="fit directories (each with metrics.json and curve.csv)")
    p.add_argument("--out", type=Path, required=True, help="output directory, e.g. results/<profile>")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    profile_of(cfg, args.profile)
    metrics, curves = collect(args.fits, args.profile, cfg)
    s = write_report(metrics, curves, cfg, args.profile, args.out)
    d = s["table1_mean_delta_vs_paper"]
    delta = "" if d is None else f", Δ vs paper {d:+.2f} dB"
    print(f"{args.out}: {s['n_fits']} fits of profile {args.profile}; Table 1 mean PSNR "
          f"{_fmt(s['table1_mean_psnr'])} dB over {len(s['table1'])} images (paper on the same images "
          f"{_fmt(s['table1_paper_mean_psnr'])}){delta}")
    return 0


# ---------------------------------------------------------------------------------------------- compare
def read_metrics_csv(path: Path, what: str) -> pd.DataFrame:
    """A metrics.csv (or baseline) with the key and psnr columns checked and no duplicate keys."""
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        hint = " (make one with `make baseline`)" if what == "baseline" else ""
        raise DipError(path, f"no such file{hint}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DipError(path, f"unreadable CSV ({e})") from None
    missing = [c for c in KEY + ["psnr"] if c not in df.columns]
    if missing:
        raise DipError(path, f"{what} is missing columns: {', '.join(missing)}")
    dup = df[df.duplicated(KEY, keep=False)]
    if not dup.empty:
        first = dup.iloc[0]
        raise DipError(path, f"duplicate row for ({first['task']}, {first['image']}, seed {first['seed']})")
    return df


def compare(current: pd.DataFrame, baseline: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Every (task, image, seed) of either side with baseline/current PSNR, difference and status."""
    cur = current[KEY + ["psnr"]].rename(columns={"psnr": "current_psnr"}).assign(_c=range(len(current)))
    base = baseline[KEY + ["psnr"]].rename(columns={"psnr": "baseline_psnr"}).assign(_b=range(len(baseline)))
    j = base.merge(cur, on=KEY, how="outer")
    j = j.sort_values(["_c", "_b"], kind="stable", na_position="last").reset_index(drop=True)
    j["diff_db"] = j["current_psnr"] - j["baseline_psnr"]

    def status(r: pd.Series) -> str:
        if math.isnan(r["_c"]):
            return "FAIL: missing in current"
        if math.isnan(r["_b"]):
            return "FAIL: missing in baseline"
        if math.isnan(r["current_psnr"]) or math.isnan(r["baseline_psnr"]):
            return "FAIL: no psnr"
        return "ok" if abs(r["diff_db"]) <= tolerance + _EPS else f"FAIL: |Δ| > {tolerance:g} dB"

    j["status"] = j.apply(status, axis=1)
    j["seed"] = j["seed"].astype(int)
    return j[KEY + ["baseline_psnr", "current_psnr", "diff_db", "status"]]


def _write_baseline(current: pd.DataFrame, path: Path) -> None:
    cols = [c for c in BASELINE_COLUMNS if c in current.columns]
    with StagedFiles() as st:
        _csv(current[cols], st.path(path))


def check_same_profile(current: pd.DataFrame, where: Path, baseline: pd.DataFrame, base_where: Path) -> None:
    """Refuse to compare numbers of different profiles (or a side that does not say its profile)."""
    for df, path in ((current, where), (baseline, base_where)):
        if "profile" not in df.columns or df["profile"].isna().any():
            raise DipError(path, "has no profile column (every result file records its profile)")
    a, b = sorted(set(current["profile"].astype(str))), sorted(set(baseline["profile"].astype(str)))
    if a != b:
        raise DipError(base_where, f"baseline of profile {', '.join(b)} but {where} is profile {', '.join(a)}: "
                                   "numbers of different profiles are not comparable")


def compare_main(argv: list[str] | None = None) -> int:
    """`dip compare`: 0 when every row is within tolerance, 1 otherwise (the table names every row)."""
    p = argparse.ArgumentParser(prog="dip compare", description="Compare a metrics.csv with the regression "
                                "baseline on (task, image, seed): final-iterate PSNR within --tolerance dB.")
    p.add_argument("--metrics", type=Path, required=True, help="the current metrics.csv (results/ci/metrics.csv)")
    p.add_argument("--baseline", type=Path, help="baseline CSV (default: regression.baseline of --config)")
    p.add_argument("--tolerance", type=float, help="dB (default: regression.tolerance_db of --config)")
    p.add_argument("--config", type=Path, help="pipeline config, for the defaults above")
    p.add_argument("--write-baseline", action="store_true",
                   help="write --metrics as the new baseline instead of comparing")
    args = p.parse_args(argv)
    reg = load_config(args.config).get("regression", {}) if args.config else {}
    baseline_path = args.baseline or (Path(reg["baseline"]) if "baseline" in reg else None)
    tolerance = args.tolerance if args.tolerance is not None else reg.get("tolerance_db")
    if baseline_path is None:
        raise DipError("--baseline", "required (or give --config with regression.baseline)")
    current = read_metrics_csv(args.metrics, "metrics")
    if args.write_baseline:
        _write_baseline(current, baseline_path)
        print(f"wrote baseline {baseline_path} ({len(current)} rows from {args.metrics})")
        return 0
    if tolerance is None:
        raise DipError("--tolerance", "required (or give --config with regression.tolerance_db)")
    tolerance = float(tolerance)
    if not tolerance >= 0:
        raise DipError("--tolerance", f"must be >= 0, got {tolerance}")
    baseline = read_metrics_csv(baseline_path, "baseline")
    check_same_profile(current, args.metrics, baseline, baseline_path)
    j = compare(current, baseline, tolerance)
    print(j.to_string(index=False, na_rep="—", float_format=lambda v: f"{v:.3f}"))
    bad = j[j["status"] != "ok"]
    if bad.empty:
        print(f"regression gate: PASS: all {len(j)} rows within ±{tolerance:g} dB of {baseline_path}")
        return 0
    named = "; ".join(f"{r.task}/{r.image}/seed{r.seed} ({r.status.removeprefix('FAIL: ')})"
                      for r in bad.itertuples(index=False))
    print(f"regression gate: FAIL: {len(bad)} of {len(j)} rows against {baseline_path}: {named}")
    return 1


if __name__ == "__main__":
    from dip.cli import main as dip_main

    sys.exit(dip_main(["report", *sys.argv[1:]]))
