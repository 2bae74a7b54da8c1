"""`dip gate` (formerly `dip compare`): the CI regression gate. A metrics.csv is joined with the baseline on (task, image, seed) and
fails (exit 1) when a final-iterate PSNR moved by more than the tolerance or a row is missing on either side.

Fit by fit only on the machine that made the baseline. Its processor, SIMD kernels and torch version are recorded
beside it (``<baseline>.machine.json``, :func:`dip.core.compute.machine`; a baseline without it is compared fit by
fit). DIP's optimisation is chaotic: on
another processor every fit takes another trajectory and ends apart from the baseline's by about the seed-to-seed
spread (docs/reliability.md has a measured case). There the gate judges all fits together instead: it passes when
the 95% interval of the mean difference over the fits lies inside ±tolerance, and says so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from scipy import stats as scipy_stats

from dip.cliconv import Parser
from dip.core.compute import machine
from dip.data.atomic import StagedFiles
from dip.data.config import load_config
from dip.errors import DipError
from dip.report.results import BASELINE_COLUMNS, KEY
from dip.report.table1 import TOLERANCE_EPS


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
        return "ok" if abs(r["diff_db"]) <= tolerance + TOLERANCE_EPS else f"FAIL: |Δ| > {tolerance:g} dB"

    j["status"] = j.apply(status, axis=1)
    j["seed"] = j["seed"].astype(int)
    return j[KEY + ["baseline_psnr", "current_psnr", "diff_db", "status"]]


def machine_file(baseline: Path) -> Path:
    """Where the baseline's machine is recorded: ``ci_metrics.csv`` -> ``ci_metrics.machine.json``."""
    return baseline.with_suffix(".machine.json")


def _write_baseline(current: pd.DataFrame, path: Path) -> None:
    cols = [c for c in BASELINE_COLUMNS if c in current.columns]
    with StagedFiles() as st:
        current[cols].to_csv(st.path(path), index=False, lineterminator="\n")
        st.path(machine_file(path)).write_text(json.dumps(machine(), indent=2) + "\n")


def baseline_machine(path: Path) -> dict[str, str] | None:
    """The machine recorded beside the baseline, or None (a baseline from before machines were recorded)."""
    try:
        return json.loads(machine_file(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise DipError(machine_file(path), f"unreadable ({e})") from None


def across_machines(j: pd.DataFrame, tolerance: float) -> tuple[bool, str]:
    """The verdict over all fits together: every row present with a PSNR, and the 95% t interval of the mean
    difference inside ±tolerance."""
    missing = j["status"].str.startswith("FAIL: missing") | j["status"].eq("FAIL: no psnr")
    if missing.any():
        return False, f"{int(missing.sum())} rows missing or without psnr"
    d = j["diff_db"].to_numpy(dtype=float)
    low, high = scipy_stats.ttest_1samp(d, 0.0).confidence_interval(0.95) if len(d) > 1 else (d[0], d[0])
    ok = -tolerance - TOLERANCE_EPS <= low and high <= tolerance + TOLERANCE_EPS
    return ok, (f"mean Δ over {len(d)} fits {d.mean():+.3f} dB, 95% interval [{low:+.3f}, {high:+.3f}] "
                f"{'inside' if ok else 'not inside'} ±{tolerance:g} dB (std {d.std(ddof=1):.3f}, largest |Δ| "
                f"{abs(d).max():.3f})")


def check_same_profile(current: pd.DataFrame, where: Path, baseline: pd.DataFrame, base_where: Path) -> None:
    """Refuse to compare numbers of different profiles (or a side that does not say its profile)."""
    for df, path in ((current, where), (baseline, base_where)):
        if "profile" not in df.columns or df["profile"].isna().any():
            raise DipError(path, "has no profile column (every result file records its profile)")
    a, b = sorted(set(current["profile"].astype(str))), sorted(set(baseline["profile"].astype(str)))
    if a != b:
        raise DipError(base_where, f"baseline of profile {', '.join(b)} but {where} is profile {', '.join(a)}: "
                                   "numbers of different profiles are not comparable")


def main(argv: list[str] | None = None) -> int:
    """`dip gate` (formerly `dip compare`): 0 when every row is within tolerance, 1 otherwise (the table names
    every row)."""
    p = Parser(prog="dip gate", description="The CI regression gate (formerly dip compare): compare a metrics.csv "
                "with the regression baseline on (task, image, seed): final-iterate PSNR within --tolerance dB.")
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
    made_on, here = baseline_machine(baseline_path), machine()
    if made_on is not None and made_on != here:
        ok, why = across_machines(j, tolerance)
        print(f"regression gate: the baseline was made on {made_on}, this is {here}: "
              "fit-by-fit numbers differ across machines (chaotic optimisation), so all fits are judged together")
        print(f"regression gate: {'PASS' if ok else 'FAIL'}: {why}")
        return 0 if ok else 1
    bad = j[j["status"] != "ok"]
    if bad.empty:
        print(f"regression gate: PASS: all {len(j)} rows within ±{tolerance:g} dB of {baseline_path}")
        return 0
    named = "; ".join(f"{r.task}/{r.image}/seed{r.seed} ({r.status.removeprefix('FAIL: ')})"
                      for r in bad.itertuples(index=False))
    print(f"regression gate: FAIL: {len(bad)} of {len(j)} rows against {baseline_path}: {named}")
    return 1
