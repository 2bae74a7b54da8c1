"""`dip gate` (formerly `dip compare`), the CI regression gate: a metrics.csv is joined with the baseline on
(task, image, seed) and fails (exit 1) when a final-iterate PSNR moved by more than the tolerance or a row is missing on either side."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

from dip.atomic import StagedFiles
from dip.cliconv import Parser
from dip.errors import DipError
from dip.records import BASELINE_COLUMNS, KEY, load_config
from dip.table1 import TOLERANCE_EPS


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


def _write_baseline(current: pd.DataFrame, path: Path) -> None:
    cols = [c for c in BASELINE_COLUMNS if c in current.columns]
    with StagedFiles() as st:
        current[cols].to_csv(st.path(path), index=False, lineterminator="\n")


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

    sys.exit(dip_main(["gate", *sys.argv[1:]]))
