"""What a fit costs on a GPU, from measured records: the time limit the workflow asks the scheduler for.

A profile may give, instead of a fixed ``runtime_min``, the measured seconds per iteration of its fits by task and
image size (``seconds_per_iter: {table1: {512x512: 0.0466, ...}}``, sizes as WxH), a margin and minutes of
start-up. A fit then asks for ``ceil(iterations x rate x margin / 60) + extra`` minutes (:func:`fit_minutes`). A
fit killed at that limit checkpoints on SIGTERM and resumes when Snakemake resubmits it, so a limit that is too
short on a slower GPU costs a resubmission, not the work done.

The rates in config/config.yaml are the slowest whole fit of each task and size among the committed GPU records
(docs/paper-gpu-run/*/seed*/metrics.json, :func:`record_rates`); tests/test_cost.py keeps the two equal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dip.errors import DipError


def size_key(width: int, height: int) -> str:
    """'512x512': how sizes are written in ``seconds_per_iter`` (width x height)."""
    return f"{width}x{height}"


def _pixels(key: str) -> int:
    width, height = (int(v) for v in key.split("x"))
    return width * height


def rate(rates: dict[str, dict[str, float]], task: str, width: int, height: int) -> float:
    """Seconds per iteration of ``task`` at width x height: the measured rate of that size; else the measured
    size with the most pixels up to this one, scaled by the pixel ratio (at the measured sizes a 4x larger image
    took ~3x longer, so the scaling errs long); else (smaller than every measured size) the smallest's rate."""
    measured = rates.get(task)
    if not measured:
        raise DipError("seconds_per_iter", f"no measured rate for task {task!r} (measured: {', '.join(rates)})")
    pixels = width * height
    if size_key(width, height) in measured:
        return float(measured[size_key(width, height)])
    below = [k for k in measured if _pixels(k) <= pixels]
    if below:
        key = max(below, key=_pixels)
        return float(measured[key]) * pixels / _pixels(key)
    return float(measured[min(measured, key=_pixels)])


def fit_minutes(iterations: int, seconds_per_iter: float, margin: float, extra_min: int) -> int:
    """The time limit of one fit in whole minutes: its iterations at the measured rate times the margin, rounded
    up, plus ``extra_min`` for start-up (imports, data check, CUDA initialisation, graph capture) and outputs."""
    return math.ceil(iterations * seconds_per_iter * margin / 60) + extra_min


def read_records(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The metrics.json files of fits (their task, size, seconds_per_iter, wall_seconds, device_name...)."""
    return [json.loads(Path(p).read_text()) for p in paths]


def record_rates(records: Iterable[dict[str, Any]], profile: str = "paper") -> dict[str, dict[str, float]]:
    """{task: {WxH: the slowest seconds_per_iter}} over the records of ``profile``, rounded to 0.1 ms. The slowest,
    because some of these fits shared their GPU with other fits: an upper bound on a fit alone."""
    out: dict[str, dict[str, float]] = {}
    for m in records:
        if m.get("tags", {}).get("profile") != profile:
            continue
        task, key = m["tags"]["task"], size_key(m["width"], m["height"])
        out.setdefault(task, {})[key] = max(out.get(task, {}).get(key, 0.0), round(m["seconds_per_iter"], 4))
    return out


def fit_size(cfg: dict[str, Any], profile: str, manifest: dict[str, dict[str, dict[str, Any]]], task: str,
             image: str) -> tuple[int, int]:
    """(width, height) a fit works on: the profile's crop, or the image's size in the manifest."""
    crop = cfg["profiles"][profile]["crop"]
    width, height = (crop, crop) if crop else manifest[cfg["tasks"][task]["dataset"]][image]["size"]
    return int(width), int(height)


def fits_per_seed(cfg: dict[str, Any], profile: str, manifest: dict[str, dict[str, dict[str, Any]]]) -> dict:
    """{(task, WxH): how many fits one seed of the profile runs at that size}."""
    counts: dict[tuple[str, str], int] = {}
    for task, t in cfg["tasks"].items():
        for image in t["images"]:
            key = (task, size_key(*fit_size(cfg, profile, manifest, task, image)))
            counts[key] = counts.get(key, 0) + 1
    return counts


def limit_minutes(cfg: dict[str, Any], profile: str, task: str, width: int, height: int) -> int:
    """The time limit of a fit of this task and size, as the workflow asks for it (workflow/rules/common.smk):
    the profile's fixed ``runtime_min``, or :func:`fit_minutes` from its measured rates."""
    from dip.data.presets import resolve

    prof = cfg["profiles"][profile]
    r = prof["resources"]
    if "runtime_min" in r:
        return int(r["runtime_min"])
    iterations = resolve(cfg["tasks"][task]["preset"], prof["overrides"].get(task, {}))["iterations"]
    return fit_minutes(iterations, rate(r["seconds_per_iter"], task, width, height), r["runtime_margin"],
                       r["runtime_extra_min"])


def cost_table(cfg: dict[str, Any], profile: str, manifest: dict, records: list[tuple[Path, int]]) -> str:
    """The cost of the profile in Markdown, from fit records given with how many fits shared their GPU: per task
    and size the measured wall time of a fit, its GPU time (wall / fits sharing the GPU) and the time limit
    asked for; then GPU-hours and wall time, projected for one GPU and for one GPU per fit."""
    per_seed = fits_per_seed(cfg, profile, manifest)
    seen: dict[tuple[str, str], list[tuple[str, dict[str, Any], int]]] = {}
    for path, at_once in records:
        m = json.loads((Path(path) / "metrics.json").read_text())
        key = (m["tags"]["task"], size_key(m["width"], m["height"]))
        seen.setdefault(key, []).append((f"{Path(path).parent.name}/{Path(path).name}", m, at_once))
    missing = [k for k in per_seed if k not in seen]
    if missing:
        raise DipError("records", f"no record for {', '.join(f'{t} {s}' for t, s in missing)}")
    lines = [("| fits (task, size) | per seed | records (fits sharing the GPU) | GPU | wall per fit (measured) | "
             "GPU time per fit | time limit asked |"), "|---|---:|---|---|---:|---:|---:|"]
    gpu_s, slowest = {}, 0.0
    for (task, key), n in per_seed.items():
        recs = seen[(task, key)]
        wall = sum(m["wall_seconds"] for _, m, _ in recs) / len(recs)
        gpu_s[(task, key)] = sum(m["wall_seconds"] / k for _, m, k in recs) / len(recs)
        slowest = max(slowest, gpu_s[(task, key)])
        names = ", ".join(f"{name} ({k})" for name, _, k in recs)
        devices = ", ".join(sorted({m["device_name"] for _, m, _ in recs}))
        lines.append(f"| {task} {key} | {n} | {names} | {devices} | {wall:.0f} s | {gpu_s[(task, key)]:.0f} s | "
                     f"{limit_minutes(cfg, profile, task, *(int(v) for v in key.split('x')))} min |")
    seeds = cfg["profiles"][profile]["seeds"]
    one_seed = sum(gpu_s[k] * n for k, n in per_seed.items())
    total = one_seed * len(seeds)
    fits = sum(per_seed.values()) * len(seeds)
    lines += ["", f"- One seed, one GPU (projected from the rows): {one_seed / 60:.1f} min of GPU time.",
              (f"- The profile (seeds {', '.join(map(str, seeds))}: {fits} fits), projected: **{total / 3600:.2f} "
              f"GPU-hours**; on one GPU, one fit after another, about {total / 3600:.1f} h of wall time; on a "
              f"cluster with a GPU per fit, about {slowest / 60:.1f} min of fitting (the slowest fit alone), plus "
              f"the queue and each job's start-up.")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m dip.report.cost RECORD[:N] ...`: the cost table of docs/cluster.md."""
    import argparse

    from dip.data.config import load_config
    from dip.data.manifest import load_manifest

    p = argparse.ArgumentParser(prog="python -m dip.report.cost", description="GPU time and time limits of a profile "
                                "from fit records (metrics.json folders).")
    p.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    p.add_argument("--profile", default="paper")
    p.add_argument("records", nargs="+", metavar="DIR[:N]",
                   help="a fit folder; :N when N fits shared its GPU (its GPU time is its wall time / N)")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    records = [(Path(r.rsplit(":", 1)[0]), int(r.rsplit(":", 1)[1]) if ":" in r else 1) for r in args.records]
    print(cost_table(cfg, args.profile, load_manifest(cfg.get("manifest", "config/datasets.yaml")), records), end="")
    return 0


if __name__ == "__main__":
    import sys

    try:
        raise SystemExit(main())
    except DipError as e:  # one line, as the dip command prints it
        print(f"python -m dip.report.cost: error: {e}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None
