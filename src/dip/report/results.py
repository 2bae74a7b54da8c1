"""Reading what fits leave behind: each fit's ``metrics.json`` and ``curve.csv`` (the config: :mod:`dip.data.config`).

Every reader checks what the report relies on and raises :class:`~dip.errors.DipError` naming the file (the
contract: docs/architecture.md). :func:`collect` gathers a profile's fits into two long tables.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from dip.data.config import read_mapping
from dip.errors import DipError

KEY = ["task", "image", "seed"]
METRICS_COLUMNS = [
    "task", "image", "seed", "psnr", "ssim", "psnr_best", "psnr_best_iter", "psnr_ema", "psnr_es", "es_iter",
    "es_fired_at", "psnr_masked", "psnr_missing", "iterations",
    "seconds_per_iter", "wall_seconds", "backtracks", "device", "precision", "threads", "profile", "preset",
    "height", "width", "image_sha256",
]
# The reference engine's fits (dip fit --engine authors) also score what the authors' notebook shows.
REFERENCE_COLUMNS = [*METRICS_COLUMNS, "psnr_shown"]
CURVES_COLUMNS = ["task", "image", "seed", "iteration", "psnr", "psnr_masked", "loss", "profile"]
_CURVE_FILE_COLUMNS = CURVES_COLUMNS[3:7]  # the columns read from each fit's curve.csv
BASELINE_COLUMNS = ["task", "image", "seed", "psnr", "ssim", "iterations", "device", "precision", "profile",
                    "image_sha256"]
# Fits recorded before output averaging and early stopping existed (docs/paper-gpu-run) lack these, and fits
# recorded before the PSNR on the missing pixels existed lack psnr_missing: NaN then.
OPTIONAL = ("psnr_ema", "psnr_es", "es_iter", "es_fired_at", "psnr_missing")
_REQUIRED = [c for c in METRICS_COLUMNS if c not in ("task", "image", "profile", "image_sha256", *OPTIONAL)] + ["tags"]


def load_fit_metrics(fit_dir: str | os.PathLike) -> dict[str, Any]:
    """A fit directory's metrics.json as a dict (DipError naming the file when missing or malformed)."""
    d = Path(fit_dir)
    if not d.is_dir():
        raise DipError(d, "fit directory does not exist")
    return read_mapping(d / "metrics.json", json.loads, json.JSONDecodeError, "JSON",
                         "no such file (is the fit finished?)", "expected a JSON object")


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


def check_engine(m: dict[str, Any], where: Path, engine: str) -> None:
    """Refuse a fit made by another engine than ``engine`` (fits from before engines existed are ours)."""
    got = m.get("engine", "ours")
    if got != engine:
        what = {"ours": "--fits", "authors": "--reference-fits"}[engine]
        raise DipError(where, f"fit of engine {got!r} given as {what}, which takes engine {engine!r} fits")


def fit_row(m: dict[str, Any], where: Path, cfg: dict[str, Any],
            columns: list[str] = METRICS_COLUMNS) -> dict[str, Any]:
    """One metrics.csv row (``columns``) from a fit's metrics.json, validated against the config's tasks and
    images."""
    missing = [k for k in _REQUIRED + columns[len(METRICS_COLUMNS):] if k not in m]
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
    row = {k: m[k] for k in columns if k in m}
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


def collect(fits: list[Path], profile: str, cfg: dict[str, Any],
            engine: str = "ours") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics, curves) DataFrames of all fits of ``engine``, checked for profile, engine and duplicates, in
    config order. The reference engine's metrics have :data:`REFERENCE_COLUMNS`."""
    columns = METRICS_COLUMNS if engine == "ours" else REFERENCE_COLUMNS
    rows, curves, seen = [], [], {}
    for d in fits:
        m = load_fit_metrics(d)
        where = Path(d) / "metrics.json"
        check_profile(m, where, profile)
        check_engine(m, where, engine)
        row = fit_row(m, where, cfg, columns)
        key = (row["task"], row["image"], int(row["seed"]))
        if key in seen:
            raise DipError(d, f"duplicate fit {key} (also in {seen[key]})")
        seen[key] = d
        rows.append(row)
        curves.append(read_curve(Path(d), *key, row["profile"]))
    metrics = config_order(pd.DataFrame(rows, columns=columns), cfg)
    return metrics, config_order(pd.concat(curves, ignore_index=True), cfg)
