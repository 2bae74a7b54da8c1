"""Is A as good as B?  Comparisons of two sides (A, B) over several seeds per image, never run by run.

A DIP fit is a chaotic optimisation: any change of rounding sends it on another trajectory, and its final
PSNR moves by about the seed-to-seed spread. So two runs are never paired; each side is a sample of seeds.

Input: a long DataFrame, one row per run, with group keys (e.g. ``task``, ``image``), a side column holding
the labels of A and B, and a value column (e.g. ``psnr``). The sign convention throughout is

    delta = mean(A) - mean(B)          (A: the candidate, "ours" / a fast mode; B: the reference)

so "higher" means A is higher than B.

Per group (:func:`compare`): n, mean and sample standard deviation (ddof=1) of each side, delta, and its
95% confidence interval by Welch's t (unequal variances): standard error se = sqrt(s_a^2/n_a + s_b^2/n_b),
Welch-Satterthwaite degrees of freedom df = se^4 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1)),
interval delta +- t_{0.975, df} se (``scipy.stats.ttest_ind(equal_var=False).confidence_interval``).
Verdict: ``indistinguishable`` when the interval contains 0, else ``higher`` / ``lower``; with fewer than 2
runs on a side, std and interval are NaN and the verdict is ``too few seeds``. When both sides have zero
spread (e.g. bit-identical runs) the interval is the point delta.

Over all groups (:func:`overall`): the images are the unit. The overall difference is the plain mean of the
k per-group deltas, and its interval is a one-sample t interval on those k deltas (df = k - 1). Each
per-group delta already carries its seed noise, so the spread of the deltas holds both the seed noise and
any real image-to-image variation of the effect. Pooling the seed variances instead would treat the images
as fixed and ignore that variation: it answers "on exactly these images", not "on images like these", and
is too narrow whenever the effect differs between images. The price is few degrees of freedom (k - 1).

Equivalence (:func:`equivalence`, TOST, two one-sided tests at level alpha): A is "equivalent to B within
+-margin" when the (1 - 2 alpha) interval (90% at alpha = 0.05) of the overall difference lies inside
(-margin, +margin); the TOST p-value is the larger of the two one-sided p-values of H0: delta <= -margin
and H0: delta >= +margin. Failing the test does not show a difference, only that equivalence is not shown.
It needs at least ``min_groups`` groups (4) with at least ``min_seeds`` runs (6) on each side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from dip.data.atomic import write_text

STAT_COLUMNS = ("n_a", "n_b", "mean_a", "mean_b", "std_a", "std_b", "delta", "ci_low", "ci_high", "verdict")
CSV_KEYS = ("task", "image")
TOO_FEW = "too few seeds"


def verdict(low: float, high: float) -> str:
    """``higher`` / ``lower`` when the interval excludes 0 (A above / below B), else ``indistinguishable``."""
    if math.isnan(low) or math.isnan(high):
        return TOO_FEW
    return "higher" if low > 0 else "lower" if high < 0 else "indistinguishable"


def welch(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> dict[str, float | int | str]:
    """One group: n, mean, sample std of each side, delta = mean(a) - mean(b), Welch interval and verdict."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    row = {"n_a": len(a), "n_b": len(b), "mean_a": a.mean() if len(a) else math.nan,
           "mean_b": b.mean() if len(b) else math.nan,
           "std_a": a.std(ddof=1) if len(a) > 1 else math.nan, "std_b": b.std(ddof=1) if len(b) > 1 else math.nan}
    row["delta"] = row["mean_a"] - row["mean_b"]
    if len(a) < 2 or len(b) < 2:
        low = high = math.nan
    elif row["std_a"] == 0 and row["std_b"] == 0:  # no spread at all: the interval is the point
        low = high = row["delta"]
    else:
        ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
        low, high = float(ci.low), float(ci.high)
    return {**row, "ci_low": low, "ci_high": high, "verdict": verdict(low, high)}


def compare(df: pd.DataFrame, keys: Sequence[str] = CSV_KEYS, side: str = "side", value: str = "psnr",
            a: str = "A", b: str = "B", confidence: float = 0.95) -> pd.DataFrame:
    """Per group of ``keys``: the :data:`STAT_COLUMNS` of side ``a`` against side ``b`` (rows sorted by key)."""
    missing = [c for c in (*keys, side, value) if c not in df.columns]
    if missing:
        raise ValueError(f"compare: no column {', '.join(missing)} (columns: {', '.join(map(str, df.columns))})")
    others = sorted(set(df[side]) - {a, b}, key=str)
    if others:
        raise ValueError(f"compare: column {side!r} holds {others}, expected only {a!r} and {b!r}")
    if df[value].isna().any():
        raise ValueError(f"compare: column {value!r} has missing values")
    rows = []
    for group, g in df.groupby(list(keys), sort=True):
        values = g.groupby(side)[value]
        pick = {s: values.get_group(s).to_numpy() if s in values.groups else np.array([]) for s in (a, b)}
        rows.append({**dict(zip(keys, group)), **welch(pick[a], pick[b], confidence)})
    return pd.DataFrame(rows, columns=[*keys, *STAT_COLUMNS])


def _deltas(table: pd.DataFrame) -> np.ndarray:
    """The per-group deltas that exist (both sides have at least one run)."""
    return table["delta"].dropna().to_numpy(dtype=float)


def overall(table: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row: groups (k), mean of the per-group deltas, its one-sample t interval (df = k - 1), verdict."""
    d = _deltas(table)
    low = high = math.nan
    if len(d) >= 2:
        if np.ptp(d) == 0:
            low = high = float(d[0])
        else:
            ci = stats.ttest_1samp(d, 0.0).confidence_interval(confidence)
            low, high = float(ci.low), float(ci.high)
    return pd.DataFrame([{"groups": len(d), "delta": d.mean() if len(d) else math.nan, "ci_low": low,
                          "ci_high": high, "verdict": verdict(low, high) if len(d) >= 2 else "too few images"}])


def equivalence(table: pd.DataFrame, margin: float, alpha: float = 0.05, min_groups: int = 4,
                min_seeds: int = 6) -> pd.DataFrame:
    """One row: is A equivalent to B within +-``margin`` (TOST at ``alpha``, over the per-group deltas)?

    Columns: groups, min_n (fewest runs on a side of any group), delta, low and high of the (1 - 2 alpha)
    interval, p_tost, equivalent (bool) and verdict (``equivalent``, ``not shown equivalent`` or why the
    data are too few)."""
    if margin <= 0 or not 0 < alpha < 0.5:
        raise ValueError(f"equivalence: margin must be > 0 and alpha in (0, 0.5), got {margin}, {alpha}")
    d = _deltas(table)
    min_n = int(min(table["n_a"].min(), table["n_b"].min())) if len(table) else 0
    row = {"groups": len(d), "min_n": min_n, "delta": d.mean() if len(d) else math.nan, "low": math.nan,
           "high": math.nan, "p_tost": math.nan, "equivalent": False}
    if len(d) < min_groups or min_n < min_seeds:
        why = f"too few: {len(d)} groups x >= {min_n} runs per side (needs {min_groups} x {min_seeds})"
        return pd.DataFrame([{**row, "verdict": why}])
    if np.ptp(d) == 0:
        low = high = float(d[0])
        p = 0.0 if abs(low) < margin else 1.0
    else:
        low, high = (float(x) for x in stats.ttest_1samp(d, 0.0).confidence_interval(1 - 2 * alpha))
        p = max(stats.ttest_1samp(d, -margin, alternative="greater").pvalue,
                stats.ttest_1samp(d, margin, alternative="less").pvalue)
    ok = -margin < low and high < margin
    return pd.DataFrame([{**row, "low": low, "high": high, "p_tost": float(p), "equivalent": ok,
                          "verdict": "equivalent" if ok else "not shown equivalent"}])


def write_csv(table: pd.DataFrame, path: Path | str, keys: Sequence[str] = CSV_KEYS) -> Path:
    """Write the per-group table (atomically) with the columns ``keys`` then :data:`STAT_COLUMNS`, in order."""
    columns = [*keys, *STAT_COLUMNS]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"write_csv: the table has no column {', '.join(missing)}")
    write_text(path, table[columns].to_csv(index=False, lineterminator="\n"))
    return Path(path)
