"""The classical fill beside every Table 1 number: baselines read and checked, their columns, cells and summary.

A baseline (``dip baseline``, :mod:`dip.engine.baseline`) stands beside one fit: same task, image, seed, and the same
image, mask and crop. :func:`collect_baselines` reads ``--baselines`` folders and refuses one that is not a
baseline, is of another profile, has no fit beside it, or was made from another mask, image or crop than its fit
(one line naming its metrics.json).

:func:`add_classical` gives Table 1 (per image, then the Average row):

* ``papyan_psnr``: the paper's own baseline row (config ``paper.papyan_psnr``; on the paper's masks, not ours);
* ``classical_psnr_mean`` / ``_std`` / ``_n`` and ``classical_psnr_missing_mean``: the fill over seeds;
* ``psnr_missing_mean``: ours on the missing pixels alone (fits recorded before it existed lack it: NaN);
* ``dip_minus_classical`` with ``_ci_low``, ``_ci_high`` and ``_verdict``: mean(ours) − mean(classical) over
  seeds, the 95% Welch interval (:func:`dip.report.stats.compare`), never fit by fit; the Average row: the mean of the
  per-image deltas with a t interval over the images (:func:`dip.report.stats.overall`, images as the unit);
* ``dip_minus_classical_missing`` (+ interval): the same on the missing pixels alone;
* ``classical_method``: which fill.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dip.data.config import TABLE1_TASK
from dip.errors import DipError
from dip.report import stats
from dip.report.results import KEY, check_profile, config_order, load_fit_metrics

ENGINE = "classical"
BASELINE_COLUMNS = [*KEY, "method", "psnr", "ssim", "psnr_missing", "wall_seconds", "mask_sha256"]
DELTAS = {"dip_minus_classical": "psnr", "dip_minus_classical_missing": "psnr_missing"}


def inputs_of(m: dict[str, Any]) -> dict[str, Any]:
    """What must agree between a fit and its baseline: image and mask sha256, and the crop box."""
    hashes = m.get("inputs") or {}
    sha = {k: (v or {}).get("sha256") if isinstance(v, dict) else v for k, v in hashes.items()}
    return {"image": sha.get("image"), "mask": m.get("mask_sha256", sha.get("mask")), "crop": m.get("crop")}


def key_of(m: dict[str, Any]) -> tuple[str, str, int]:
    """(task, image, seed) of a fit's or a baseline's metrics.json."""
    tags = m.get("tags") if isinstance(m.get("tags"), dict) else {}
    return tags.get("task"), tags.get("image"), int(m.get("seed", -1))


def fit_inputs(fits: list[Path]) -> dict[tuple[str, str, int], tuple[Path, dict[str, Any]]]:
    """(task, image, seed) -> (fit folder, its inputs) of every fit given to the report."""
    found = {}
    for d in fits:
        m = load_fit_metrics(d)
        found[key_of(m)] = (Path(d), inputs_of(m))
    return found


def check_against_fit(m: dict[str, Any], where: Path, fit: tuple[Path, dict[str, Any]] | None,
                      key: tuple[str, str, int]) -> None:
    """Refuse a baseline without a fit beside it, or made from another mask, image or crop than that fit."""
    if fit is None:
        raise DipError(where, f"no fit of {key[0]}/{key[1]} seed {key[2]} among --fits to check its mask against")
    fit_dir, expected = fit
    got = inputs_of(m)
    for what in ("mask", "image", "crop"):
        if got[what] != expected[what]:
            show = (lambda v: str(v)[:12]) if what != "crop" else str
            raise DipError(where, f"made from another {what} than its fit {fit_dir} ({what} {show(got[what])} vs "
                                  f"{show(expected[what])}): a baseline must fill exactly the fit's inputs")


def check_baseline(m: dict[str, Any], where: Path, profile: str) -> None:
    """Refuse a metrics.json that is not a baseline's (`dip baseline`), lacks a key, or is of another profile."""
    if m.get("engine") != ENGINE:
        raise DipError(where, f"not a baseline (engine {m.get('engine', 'ours')!r}; `dip baseline` writes "
                              f"engine {ENGINE!r})")
    missing = [k for k in ("psnr", "ssim", "psnr_missing", "wall_seconds", "seed", "method", "tags") if k not in m]
    if missing:
        raise DipError(where, f"missing keys: {', '.join(missing)}")
    check_profile(m, where, profile)


def baseline_row(m: dict[str, Any], where: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """One baseline row (:data:`BASELINE_COLUMNS`), its task and image checked against the config."""
    task, image, seed = key_of(m)
    if task not in cfg["tasks"] or image not in cfg["tasks"][task]["images"]:
        raise DipError(where, f"tags task {task!r} / image {image!r} are not in the config")
    return {"task": task, "image": image, "seed": seed, "method": m["method"],
            **{k: m[k] for k in BASELINE_COLUMNS[4:-1]}, "mask_sha256": inputs_of(m)["mask"]}


def collect_baselines(baselines: list[Path], fits: list[Path], profile: str, cfg: dict[str, Any]) -> pd.DataFrame:
    """The baselines as a DataFrame in config order, each checked against its fit (same mask, image, crop)."""
    beside = fit_inputs(fits)
    rows, seen = [], {}
    for d in baselines:
        m = load_fit_metrics(d)
        where = Path(d) / "metrics.json"
        check_baseline(m, where, profile)
        row = baseline_row(m, where, cfg)
        key = (row["task"], row["image"], row["seed"])
        if key in seen:
            raise DipError(d, f"duplicate baseline {key} (also in {seen[key]})")
        check_against_fit(m, where, beside.get(key), key)
        seen[key] = d
        rows.append(row)
    if len({r["method"] for r in rows}) > 1:
        raise DipError("--baselines", f"mixes fills ({', '.join(sorted({r['method'] for r in rows}))}): one per report")
    return config_order(pd.DataFrame(rows, columns=BASELINE_COLUMNS), cfg)


def _welch(ours: pd.DataFrame, classical: pd.DataFrame, value: str) -> pd.DataFrame:
    """Per image: ours (A) against the classical fill (B) on ``value``, over seeds (NaN values left out)."""
    both = pd.concat([ours[["image", value]].assign(side="dip"), classical[["image", value]].assign(side="classical")],
                     ignore_index=True).dropna(subset=[value])
    return stats.compare(both, keys=("image",), side="side", value=value, a="dip", b="classical").set_index("image")


def add_classical(table: pd.DataFrame, metrics: pd.DataFrame, baselines: pd.DataFrame | None,
                  cfg: dict[str, Any]) -> pd.DataFrame:
    """Table 1 (from :func:`dip.report.table1.table1`) with the Papyan et al. and classical-fill columns."""
    t = table.set_index("image")
    papyan = cfg["paper"].get("papyan_psnr") or {}
    t.insert(t.columns.get_loc("paper_psnr") + 1, "papyan_psnr", [float(papyan.get(im, np.nan)) for im in t.index])
    ours = metrics[metrics["task"] == TABLE1_TASK]
    t.insert(t.columns.get_loc("psnr_std") + 1, "psnr_missing_mean", ours.groupby("image")["psnr_missing"].mean())
    b = (baselines if baselines is not None else pd.DataFrame(columns=BASELINE_COLUMNS))
    b = b[b["task"] == TABLE1_TASK]
    g = b.groupby("image")
    new = pd.DataFrame({"classical_psnr_mean": g["psnr"].mean(), "classical_psnr_std": g["psnr"].std(ddof=1),
                        "classical_n": g["seed"].nunique(), "classical_psnr_missing_mean": g["psnr_missing"].mean()},
                       index=t.index).astype(float)
    for name, value in DELTAS.items():
        w = _welch(ours, b, value).reindex(t.index)
        new[name], new[f"{name}_ci_low"], new[f"{name}_ci_high"] = w["delta"], w["ci_low"], w["ci_high"]
        new[f"{name}_verdict"] = w["verdict"]
        per_image = w.loc[[im for im in w.index if im != "Average"]]
        o = stats.overall(per_image).iloc[0]
        new.loc["Average", [name, f"{name}_ci_low", f"{name}_ci_high", f"{name}_verdict"]] = [
            o["delta"], o["ci_low"], o["ci_high"], f"{o['verdict']} ({o['groups']} images)"]
    images = [im for im in t.index if im != "Average"]
    for column in ("papyan_psnr", "psnr_missing_mean"):  # the Average row: over the images that have fits
        t.loc["Average", column] = t.loc[[im for im in images if t.loc[im, "n_seeds"] > 0], column].mean()
    for column in ("classical_psnr_mean", "classical_psnr_missing_mean"):  # ... that have baselines
        new.loc["Average", column] = new.loc[images, column].mean()
    new.loc["Average", "classical_n"] = float(new.loc[images, "classical_psnr_mean"].notna().sum())
    new["classical_method"] = ", ".join(sorted(set(b["method"]))) or None
    profile_at = t.columns.get_loc("profile")
    t = pd.concat([t.iloc[:, :profile_at], new, t.iloc[:, profile_at:]], axis=1)
    return t.rename_axis("image").reset_index()


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _delta_cell(r: pd.Series, name: str = "dip_minus_classical") -> str:
    d, low, high = r[name], r[f"{name}_ci_low"], r[f"{name}_ci_high"]
    if math.isnan(d):
        return "—"
    if math.isnan(low):
        return f"{d:+.2f} (no interval: {'1 image' if r['image'] == 'Average' else '1 seed'})"
    return f"{d:+.2f} [{low:+.2f}, {high:+.2f}]"


def markdown_columns(table: pd.DataFrame) -> dict[str, dict[str, list[str]]]:
    """The Markdown cells: {"paper": {title: cells}} beside the paper's DIP, {"ours": {title: cells}} after
    the verdict."""
    def pm(mean: float, std: float) -> str:
        return _fmt(mean) if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"

    method = next((m for m in table["classical_method"] if isinstance(m, str)), "classical")
    return {
        "paper": {"Paper Papyan et al. (dB)": [_fmt(v) for v in table["papyan_psnr"]]},
        "ours": {
            f"Classical fill ({method}), mean ± std": [pm(m, s) for m, s in zip(table["classical_psnr_mean"],
                                                                               table["classical_psnr_std"])],
            "DIP − classical [95% CI]": [_delta_cell(r) for _, r in table.iterrows()],
        },
    }


def markdown(show: pd.DataFrame, lines: list[str], table: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """table1.md's columns, header lines and column alignment, with the Papyan et al. column beside the paper's
    DIP and the classical fill after the verdict when ``table`` has them (:func:`add_classical`)."""
    if "papyan_psnr" in table.columns:
        show = show.rename(columns={"Paper PSNR (dB)": "Paper DIP (dB)"})
        extra = markdown_columns(table)
        for at, columns in ((2, extra["paper"]), (7, extra["ours"])):
            for j, (title, cells) in enumerate(columns.items()):
                show.insert(at + j, title, cells)
        lines = [*lines[:-1], *markdown_lines(table), lines[-1]]
    return show, lines, ["left" if c in ("Image", "Verdict") else "right" for c in show.columns]


def markdown_lines(table: pd.DataFrame) -> list[str]:
    """The bullet points of table1.md's header that say what the new columns are."""
    avg = table[table["image"] == "Average"].iloc[0]
    method = next((m for m in table["classical_method"] if isinstance(m, str)), None)
    fill = (f"**Classical fill**: `dip baseline` ({method}, scikit-image; no learning, no GPU) on exactly the fit's "
            "image, mask and crop, one per seed (docs/baselines.md)" if method else
            "**Classical fill**: none given (`dip report --baselines`), so its columns are empty")
    ours = _fmt(avg["psnr_missing_mean"]) + " dB" if not math.isnan(avg["psnr_missing_mean"]) else (
        "— (fits recorded before `psnr_missing` existed; docs/baselines.md derives it from psnr and psnr_masked)")
    return [
        "- **Paper Papyan et al.**: the paper's own baseline row (convolutional sparse coding), copied from its "
        "Table 1; on the paper's masks, not ours: shown, never compared.",
        f"- {fill}. **DIP − classical**: mean(ours) − mean(classical) over seeds with its 95% Welch interval "
        "(never seed by seed); in the Average row the mean of the per-image differences with a t interval over "
        "the images (images as the unit).",
        "- On the missing pixels alone (the whole-image PSNR also counts the known half, which the fill keeps "
        f"exactly): ours {ours}, classical {_fmt(avg['classical_psnr_missing_mean'])} "
        f"dB on average; DIP − classical {_delta_cell(avg, 'dip_minus_classical_missing')} (per image in "
        "table1.csv).",
    ]


def classical_summary(table: pd.DataFrame) -> dict[str, float | None]:
    """The summary.json numbers (`dvc metrics show`): the fill's mean PSNR and DIP − classical over the images."""
    avg = table[table["image"] == "Average"].iloc[0]

    def num(v: Any) -> float | None:
        return None if v is None or pd.isna(v) else round(float(v), 4)

    return {"table1_mean_classical_psnr": num(avg["classical_psnr_mean"]),
            "table1_dip_minus_classical": num(avg["dip_minus_classical"]),
            "table1_dip_minus_classical_ci_low": num(avg["dip_minus_classical_ci_low"]),
            "table1_dip_minus_classical_ci_high": num(avg["dip_minus_classical_ci_high"])}
