"""The classical fill beside committed DIP records, computed on the CPU from the records' own masks (docs/baselines.md).

For each record (a fit folder's metrics.json, or a row of a study's metrics.csv) the inputs are rebuilt exactly as
the pipeline builds them for the given profile: the image from the data mirror (its sha256 checked against the
record), the mask with the pipeline's own ``dip mask --bernoulli DROP --seed SEED`` (or the task's fixed mask
file; its sha256 checked against the record's ``inputs.mask`` when the record has one), the profile's crop. Then
``dip baseline`` (:func:`dip.engine.baseline.run_baseline`) writes ``<out>/<task>/<image>/seed<N>/metrics.json`` (its
``output.png`` is removed unless ``--keep-images``: it is made of the third-party image, like the fits' outputs,
which the records do not commit either). Finally the comparison is printed as Markdown, over seeds
(:mod:`dip.report.stats`: Welch per image, images as the unit overall), on the whole image and on the missing pixels
alone. Records made before fits recorded ``psnr_missing`` get it derived exactly from what they recorded: the
whole-image MSE is the pixel-weighted mean of the known and the missing pixels' MSE (``psnr_masked`` is the
known pixels' PSNR, measured on the same 8-bit output), so
MSE_missing = (MSE − (1 − f)·MSE_known) / f, f the missing fraction.

    # from the project root (the recorded paths are relative to it)
    python -m benchmarks.classical_study --profile paper --records docs/paper-gpu-run/*/seed* \\
        --out docs/paper-gpu-run/baselines
    python -m benchmarks.classical_study --profile quick --metrics-csv docs/reference-quick-run/metrics.csv \\
        --out results/quick-study/baselines
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.common import ROOT, make_mask, project_config
from dip.data.images import sha256_file
from dip.engine.baseline import request, run_baseline
from dip.report import stats
from dip.report.results import config_order

TOOL = "classical_study"


def records_from_folders(folders: list[Path]) -> pd.DataFrame:
    """One row per fit folder: key, psnr, psnr_masked, psnr_missing (or NaN), mask and image sha256, crop."""
    rows = []
    for d in folders:
        m = json.loads((d / "metrics.json").read_text())
        inputs = m.get("inputs") or {}
        rows.append({"task": m["tags"]["task"], "image": m["tags"]["image"], "seed": int(m["seed"]),
                     "psnr": m["psnr"], "psnr_masked": m["psnr_masked"], "psnr_missing": m.get("psnr_missing"),
                     "image_sha256": (inputs.get("image") or {}).get("sha256"),
                     "mask_sha256": (inputs.get("mask") or {}).get("sha256"), "crop": m.get("crop"),
                     "where": str(d / "metrics.json")})
    return pd.DataFrame(rows)


def records_from_csv(path: Path) -> pd.DataFrame:
    """A study's metrics.csv (no mask hash or crop box in it: the masks are the pipeline's, regenerated)."""
    df = pd.read_csv(path)
    if "psnr_missing" not in df.columns:
        df["psnr_missing"] = math.nan
    return df.assign(mask_sha256=None, crop=None, where=str(path))


def inputs_for(r: pd.Series, cfg: dict[str, Any], profile: str, data: Path, masks: Path) -> tuple[Path, Path]:
    """The record's image and mask, rebuilt as the pipeline builds them; both sha256 checked against the record."""
    task = cfg["tasks"][r["task"]]
    image = data / task["dataset"] / f"{r['image']}.png"
    if not image.exists():
        sys.exit(f"{TOOL}: {image} not found (give --data, or set DIP_DATA_MIRROR)")
    if isinstance(r["image_sha256"], str) and sha256_file(image) != r["image_sha256"]:
        sys.exit(f"{TOOL}: {image} is not the image of {r['where']} (sha256 differs)")
    if task["mask"] == "bernoulli":
        mask = make_mask(image, int(r["seed"]), float(task["drop"]), masks / f"{r['image']}_seed{r['seed']}.png", TOOL)
    else:
        mask = data / task["dataset"] / f"{task['mask']}.png"
    if isinstance(r["mask_sha256"], str) and sha256_file(mask) != r["mask_sha256"]:
        sys.exit(f"{TOOL}: {mask} is not the mask of {r['where']} (sha256 {sha256_file(mask)[:12]} vs "
                 f"{r['mask_sha256'][:12]})")
    return Path(os.path.relpath(image)), Path(os.path.relpath(mask))  # as recorded in metrics.json: no home paths


def fill_all(records: pd.DataFrame, cfg: dict[str, Any], profile: str, args: argparse.Namespace) -> pd.DataFrame:
    """Run the fill beside every record; its numbers (psnr, psnr_missing, missing_fraction, wall_seconds)."""
    prof = cfg["profiles"][profile]
    masks = args.masks or ROOT / "results" / profile / "masks"
    masks.mkdir(parents=True, exist_ok=True)
    rows, checked = [], 0
    for _, r in records.iterrows():
        image, mask = inputs_for(r, cfg, profile, args.data, masks)
        checked += isinstance(r["mask_sha256"], str)
        at = (prof.get("crop_at") or {}).get(r["task"])
        out = args.out / r["task"] / r["image"] / f"seed{r['seed']}"
        req = request(image, mask, out, prof["crop"], tuple(at) if at else None,
                      {"profile": profile, "task": r["task"], "image": r["image"]})
        m = run_baseline(req, seed=int(r["seed"]))
        if isinstance(r["crop"], dict) and m["crop"] != r["crop"]:
            sys.exit(f"{TOOL}: {r['where']}: the record's crop {r['crop']} is not the profile's {m['crop']}")
        if not args.keep_images:
            (out / "output.png").unlink()
        rows.append({k: m[k] for k in ("psnr", "psnr_missing", "missing_fraction", "wall_seconds")}
                    | {"task": r["task"], "image": r["image"], "seed": int(r["seed"])})
    print(f"{TOOL}: {len(rows)} fills into {args.out}; {checked} masks checked against their record's sha256",
          file=sys.stderr)
    return pd.DataFrame(rows)


def derived_missing(psnr: float, psnr_known: float, f: float) -> float:
    """PSNR on the missing pixels from the whole-image and known-pixel PSNR and the missing fraction ``f``."""
    mse, mse_known = 10 ** (-psnr / 10), 10 ** (-psnr_known / 10)
    return -10 * math.log10((mse - (1 - f) * mse_known) / f)


def compare(records: pd.DataFrame, fills: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Per (task, image), DIP against the fill over seeds, on the whole image and on the missing pixels."""
    dip = records.merge(fills[["task", "image", "seed", "missing_fraction"]], on=["task", "image", "seed"])
    derived = [derived_missing(p, k, f) for p, k, f in zip(dip["psnr"], dip["psnr_masked"], dip["missing_fraction"])]
    dip["derived"] = dip["psnr_missing"].isna()
    dip["psnr_missing"] = dip["psnr_missing"].fillna(pd.Series(derived, index=dip.index))
    out, overall = {}, {}
    for value in ("psnr", "psnr_missing"):
        both = pd.concat([dip[["task", "image", value]].assign(side="DIP"),
                          fills[["task", "image", value]].assign(side="classical")], ignore_index=True)
        out[value] = stats.compare(both, side="side", value=value, a="DIP", b="classical")
        overall[value] = stats.overall(out[value][out[value]["task"] == "table1"]).iloc[0]
    table = out["psnr"].merge(out["psnr_missing"], on=["task", "image"], suffixes=("", "_missing"))
    seconds = fills.groupby(["task", "image"])["wall_seconds"].mean().rename("seconds").reset_index()
    table = table.merge(seconds, on=["task", "image"]).merge(
        dip.groupby(["task", "image"])["derived"].any().reset_index(), on=["task", "image"])
    order = list(dict.fromkeys(zip(records["task"], records["image"])))  # the records' order (config order)
    table = table.iloc[sorted(range(len(table)), key=lambda i: order.index(tuple(table.iloc[i][["task", "image"]])))]
    return table.reset_index(drop=True), overall


def _pm(mean: float, std: float) -> str:
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def _delta(d: float, low: float, high: float) -> str:
    return f"{d:+.2f}" if math.isnan(low) else f"{d:+.2f} [{low:+.2f}, {high:+.2f}]"


def markdown(table: pd.DataFrame, overall: dict[str, pd.Series]) -> str:
    """The comparison as a Markdown table, then the overall line (images as the unit, Table 1 images only)."""
    lines = ["| task | image | n (DIP/fill) | DIP | fill | DIP − fill [95% CI] | DIP, missing px | fill, missing px "
             "| DIP − fill, missing px [95% CI] | fill (s) |", "|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for _, r in table.iterrows():
        star = "*" if r["derived"] else ""
        lines.append(
            f"| {r['task']} | {r['image']} | {r['n_a']}/{r['n_b']} | {_pm(r['mean_a'], r['std_a'])} | "
            f"{_pm(r['mean_b'], r['std_b'])} | {_delta(r['delta'], r['ci_low'], r['ci_high'])} | "
            f"{_pm(r['mean_a_missing'], r['std_a_missing'])}{star} | {_pm(r['mean_b_missing'], r['std_b_missing'])} | "
            f"{_delta(r['delta_missing'], r['ci_low_missing'], r['ci_high_missing'])} | {r['seconds']:.2f} |")
    for name, value in (("whole image", "psnr"), ("missing pixels", "psnr_missing")):
        o = overall[value]
        lines.append(f"\nOver the {o['groups']} Table 1 images ({name}): DIP − fill "
                     f"{_delta(o['delta'], o['ci_low'], o['ci_high'])} dB ({o['verdict']}; mean of the per-image "
                     "differences, t interval, images as the unit).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{TOOL}", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--records", type=Path, nargs="+", metavar="DIR", help="fit folders (with metrics.json)")
    src.add_argument("--metrics-csv", type=Path, help="a study's metrics.csv (dip report)")
    p.add_argument("--profile", required=True, help="the profile the records were made with (crop, masks)")
    p.add_argument("--out", type=Path, required=True, help="where the baselines go (<task>/<image>/seed<N>/)")
    p.add_argument("--data", type=Path, default=Path(os.environ.get("DIP_DATA_MIRROR") or ROOT.parent / "shared/data"),
                   help="the data mirror (<data>/<dataset>/<name>.png; default $DIP_DATA_MIRROR)")
    p.add_argument("--masks", type=Path, help="where the Bernoulli masks go (default results/<profile>/masks)")
    p.add_argument("--keep-images", action="store_true", help="keep each fill's output.png")
    args = p.parse_args(argv)
    cfg = project_config()
    records = records_from_folders(args.records) if args.records else records_from_csv(args.metrics_csv)
    records = records[records["profile"] == args.profile] if "profile" in records.columns else records
    records = config_order(records, cfg)
    fills = fill_all(records, cfg, args.profile, args)
    table, overall = compare(records, fills)
    print(markdown(table, overall), end="")
    print("\n\\* derived from the record's psnr and psnr_masked (module docstring); the others recorded by the fit.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
