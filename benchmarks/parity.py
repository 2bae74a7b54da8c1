"""Do the fast modes give the reference's results?  PSNR of real fits, reference mode vs each fast mode.

    .venv/bin/python -m benchmarks.parity                       # ci profile, 4 images x 3 seeds, bf16-cl + fp32-cl
    .venv/bin/python -m benchmarks.parity --images barbara house --seeds 0 --modes bf16-cl

Each fit is the pipeline's own: :func:`dip.fit.run_fit` with the profile's crop, overrides and threads from
config/config.yaml, on images from the data mirror (``$DIP_DATA_MIRROR`` or ../shared/data) with a
Bernoulli mask from ``dip mask`` (seed = the fit's seed, drop from the table1 task). The claim per fast mode is
mean |PSNR(mode) - PSNR(reference)| over every (image, seed): a fast mode may be a profile's default only
where it is <= 0.2 dB. fp32-cl (same precision, another summation order) shows how far two fp32 fits that
differ only in rounding drift apart anyway.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.common import make_mask, project_config, table1_image
from benchmarks.modes import FIT_MODES, MODES

REFERENCE = "fp32"
THRESHOLD_DB = 0.2


def one_fit(job: dict[str, Any]) -> dict[str, Any]:
    """Run one fit (in a worker process) and return the numbers parity needs."""
    from dip.fit import FitRequest, run_fit
    from dip.presets import resolve

    mode = MODES[job["mode"]]
    precision, memory_format, cuda_graph = mode.precision, mode.memory_format, mode.cuda_graph
    req = FitRequest(image=Path(job["image"]), mask=Path(job["mask"]), gt=Path(job["image"]),
                     out=Path(job["out"]), preset="table1", params=resolve("table1", job["overrides"]),
                     seed=job["seed"], device=job["device"], threads=job["threads"], precision=precision,
                     memory_format=memory_format, cuda_graph=cuda_graph, crop=job["crop"], write_observed=False)
    with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):  # the fit's progress lines
        m = run_fit(req, progress=False)
    return {**{k: job[k] for k in ("name", "seed", "mode")}, "psnr": m["psnr"], "ssim": m["ssim"],
            "seconds_per_iter": m["seconds_per_iter"], "eval_fraction": m["eval_fraction"],
            "backtracks": m["backtracks"]}


def summarize(results: list[dict[str, Any]], modes: list[str]) -> dict[str, Any]:
    """Per image: mean reference PSNR and mean delta per mode; per mode: mean |delta| over (image, seed)."""
    psnr = {(r["name"], r["seed"], r["mode"]): r["psnr"] for r in results}
    names = sorted({r["name"] for r in results})
    seeds = sorted({r["seed"] for r in results})
    per_image = {n: {"reference": statistics.mean(psnr[n, s, REFERENCE] for s in seeds),
                     "seed_std": statistics.stdev(psnr[n, s, REFERENCE] for s in seeds) if len(seeds) > 1 else 0.0,
                     **{m: statistics.mean(psnr[n, s, m] - psnr[n, s, REFERENCE] for s in seeds) for m in modes}}
                 for n in names}
    per_mode = {}
    for m in modes:
        deltas = [psnr[n, s, m] - psnr[n, s, REFERENCE] for n in names for s in seeds]
        per_mode[m] = {"mean_abs_delta_db": statistics.mean(abs(d) for d in deltas),
                       "mean_delta_db": statistics.mean(deltas), "max_abs_delta_db": max(map(abs, deltas)),
                       "ok": statistics.mean(abs(d) for d in deltas) <= THRESHOLD_DB}
    return {"per_image": per_image, "per_mode": per_mode, "seeds": seeds}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="ci", help="profile of config/config.yaml (crop, overrides, threads)")
    ap.add_argument("--images", nargs="+", default=["barbara", "boat", "house", "peppers"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--modes", nargs="+", default=["bf16-cl", "fp32-cl"], choices=sorted(set(FIT_MODES) - {REFERENCE}))
    ap.add_argument("--data", type=Path, help="data mirror with table1/<name>.png (default: $DIP_DATA_MIRROR "
                                               "or ../shared/data)")
    ap.add_argument("--jobs", type=int, default=2, help="fits run side by side (each with the profile's threads)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a preset value on top of the profile's, e.g. --set iterations=2000")
    ap.add_argument("--json", type=Path, help="also write every fit's numbers here")
    args = ap.parse_args(argv)

    config = project_config()
    prof = config["profiles"][args.profile]
    drop = config["tasks"]["table1"]["drop"]
    overrides = {**prof["overrides"].get("table1", {}),
                 **{k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.set)}}
    with tempfile.TemporaryDirectory(prefix="parity-") as tmp:
        jobs = []
        for name in args.images:
            image = table1_image(name, args.data, "parity")
            for seed in args.seeds:
                mask = make_mask(image, seed, drop, Path(tmp) / f"{name}_seed{seed}.png", "parity")
                for mode in [REFERENCE, *args.modes]:
                    jobs.append({"name": name, "seed": seed, "mode": mode, "image": str(image), "mask": str(mask),
                                 "out": f"{tmp}/{name}/seed{seed}/{mode}", "crop": prof["crop"],
                                 "overrides": overrides, "threads": prof["threads"] or 1, "device": args.device})
        print(f"parity: {len(jobs)} fits ({args.profile} profile: crop {prof['crop']}, {overrides}, "
              f"threads {prof['threads']}, device {args.device})", file=sys.stderr, flush=True)
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(one_fit, jobs))
    summary = summarize(results, args.modes)

    print(f"\nPSNR (dB) on the {args.profile} profile, mean over seeds {summary['seeds']}; "
          f"delta = mode - {REFERENCE} (fp32 NCHW)\n")
    print("| image | " + f"{REFERENCE} PSNR | std over seeds | " + " | ".join(f"delta {m}" for m in args.modes) + " |")
    print("|---|---|---|" + "---|" * len(args.modes))
    for name, row in summary["per_image"].items():
        print(f"| {name} | {row['reference']:.2f} | {row['seed_std']:.2f} | "
              + " | ".join(f"{row[m]:+.3f}" for m in args.modes) + " |")
    print("\n| mode | mean abs delta (dB) | mean delta (dB) | max abs delta (dB) | "
          f"<= {THRESHOLD_DB} dB |\n|---|---|---|---|---|")
    for m, s in summary["per_mode"].items():
        print(f"| {m} | {s['mean_abs_delta_db']:.3f} | {s['mean_delta_db']:+.3f} | {s['max_abs_delta_db']:.3f} | "
              f"{'yes' if s['ok'] else 'NO'} |")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "summary": summary}, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
