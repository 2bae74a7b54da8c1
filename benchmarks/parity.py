"""May a fast mode be a profile's default?  Final PSNR of real fits over seeds, each mode against fp32.

    .venv/bin/python -m benchmarks.parity --threads 1           # ci profile, 4 images x 6 seeds, bf16-cl vs fp32
    .venv/bin/python -m benchmarks.parity --profile quick --modes bf16-cl fp32-cl --jobs 2

Each fit is the pipeline's own: :func:`dip.engine.engines.run_fit` with the profile's crop, overrides and threads from
config/config.yaml, on images from the data mirror (``$DIP_DATA_MIRROR`` or ../shared/data) with a
Bernoulli mask from ``dip mask`` (seed = the fit's seed, drop from the table1 task).

A fit is chaotic: any change of rounding moves its final PSNR by about the seed-to-seed spread, so runs are
never paired. Per image, each mode's seeds are compared with fp32's seeds as two samples
(:func:`dip.report.stats.compare`: delta = mean(mode) - mean(fp32), Welch 95% interval). The rule: **a mode may be
a profile's default when the 90% interval of its mean difference to fp32 over >= 4 images x >= 6 seeds
(images as the unit, TOST at alpha 0.05: :func:`dip.report.stats.equivalence`) lies inside +-0.2 dB.**

Fits land in ``--out`` (default results/<profile>/parity-<device>/fits/<mode>/<image>/seed<S>/); a fit whose
metrics.json is there, made with the same settings, is not run again, so a study can be stopped, resumed and
extended with more seeds cheaply. The per-image table goes to ``<out>/parity.csv``, the verdicts to
``<out>/eligibility.csv``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.common import ROOT, make_mask, project_config, table1_image
from benchmarks.modes import FIT_MODES, MODES
from dip.data.atomic import write_text
from dip.data.presets import parse_key_value
from dip.report import stats

REFERENCE = "fp32"
TASK = "table1"


def fail(message: str) -> None:
    """Bad input: one line, exit status 2."""
    print(f"parity: {message}", file=sys.stderr)
    sys.exit(2)


def one_fit(job: dict[str, Any]) -> dict[str, Any]:
    """Run one fit (in a worker process); its metrics.json lands in job["out"]."""
    from dip.data.presets import resolve
    from dip.engine.engines import run_fit
    from dip.engine.request import FitRequest

    mode = MODES[job["mode"]]
    precision, memory_format, cuda_graph = mode.precision, mode.memory_format, mode.cuda_graph
    req = FitRequest(image=Path(job["image"]), mask=Path(job["mask"]), gt=Path(job["image"]),
                     out=Path(job["out"]), preset=TASK, params=resolve(TASK, job["settings"]["overrides"]),
                     seed=job["seed"], device=job["device"], threads=job["threads"], precision=precision,
                     memory_format=memory_format, cuda_graph=cuda_graph, crop=job["crop"], write_observed=False,
                     tags={"image": job["name"], "parity": job["tag"]})
    with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):  # the fit's progress lines
        m = run_fit(req, progress=False)
    return {"name": job["name"], "seed": job["seed"], "mode": job["mode"], "psnr": m["psnr"]}


def done(job: dict[str, Any]) -> bool:
    """Whether the job's fit is in its folder already; a fit made with other settings is refused."""
    path = Path(job["out"]) / "metrics.json"
    if not path.exists():
        return False
    tag = (json.loads(path.read_text()).get("tags") or {}).get("parity")
    if tag != job["tag"]:
        fail(f"{path} was made with other settings ({tag}); give another --out")
    return True


def read_results(jobs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per fit (mode, task, image, seed, side, psnr), read back from the metrics.json files."""
    rows = []
    for job in jobs:
        m = json.loads((Path(job["out"]) / "metrics.json").read_text())
        rows.append({"mode": job["mode"], "task": TASK, "image": job["name"], "seed": job["seed"],
                     "psnr": m["psnr"], "seconds_per_iter": m["seconds_per_iter"]})
    return pd.DataFrame(rows)


def study(results: pd.DataFrame, modes: list[str], args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (mode, image): the mode's seeds (A) against fp32's (B); per mode: overall interval and eligibility."""
    ref = results[results["mode"] == REFERENCE].assign(side="B")
    tables, verdicts = [], []
    for mode in modes:
        both = pd.concat([results[results["mode"] == mode].assign(side="A"), ref])
        table = stats.compare(both, keys=("task", "image"))
        tables.append(table.assign(mode=mode))
        eq = stats.equivalence(table, args.margin, args.alpha, args.min_images, args.min_seeds)
        ov = stats.overall(table)
        verdicts.append({"mode": mode, "images": int(eq["groups"].iloc[0]), "min_seeds": int(eq["min_n"].iloc[0]),
                         "delta": ov["delta"].iloc[0], "ci95_low": ov["ci_low"].iloc[0],
                         "ci95_high": ov["ci_high"].iloc[0], "ci90_low": eq["low"].iloc[0],
                         "ci90_high": eq["high"].iloc[0], "p_tost": eq["p_tost"].iloc[0], "margin": args.margin,
                         "eligible": bool(eq["equivalent"].iloc[0]), "verdict": eq["verdict"].iloc[0]})
    return pd.concat(tables, ignore_index=True), pd.DataFrame(verdicts)


def interval(low: float, high: float) -> str:
    """``[low, high]`` in dB, or ``n/a`` where there is none (too few seeds or images)."""
    return "n/a" if pd.isna(low) else f"[{low:+.3f}, {high:+.3f}]"


def print_tables(table: pd.DataFrame, verdicts: pd.DataFrame, args: argparse.Namespace) -> None:
    """The per-image table and the verdicts, as markdown on stdout."""
    print(f"\nFinal PSNR (dB), {args.profile} profile, seeds {args.seeds}; delta = mean(mode) - mean({REFERENCE}), "
          "95% Welch interval\n")
    print("| mode | image | n | fp32 mean (std) | mode mean (std) | delta | 95% interval | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for r in table.itertuples():
        print(f"| {r.mode} | {r.image} | {r.n_a}/{r.n_b} | {r.mean_b:.2f} ({r.std_b:.2f}) | {r.mean_a:.2f} "
              f"({r.std_a:.2f}) | {r.delta:+.3f} | {interval(r.ci_low, r.ci_high)} | {r.verdict} |")
    print(f"\n| mode | images x seeds | mean delta | 95% interval | 90% interval (TOST) | "
          f"inside +-{args.margin} dB: eligible |\n|---|---|---|---|---|---|")
    for v in verdicts.itertuples():
        print(f"| {v.mode} | {v.images} x {v.min_seeds} | {v.delta:+.3f} | {interval(v.ci95_low, v.ci95_high)} "
              f"| {interval(v.ci90_low, v.ci90_high)} | {'yes' if v.eligible else 'no'} ({v.verdict}) |")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="ci", help="profile of config/config.yaml (crop, overrides, threads)")
    ap.add_argument("--images", nargs="+", default=["barbara", "boat", "house", "peppers"])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(6)))
    ap.add_argument("--modes", nargs="+", default=["bf16-cl"], choices=sorted(set(FIT_MODES) - {REFERENCE}))
    ap.add_argument("--data", type=Path, help="data mirror with table1/<name>.png (default: $DIP_DATA_MIRROR "
                                               "or ../shared/data)")
    ap.add_argument("--out", type=Path, help="fits, masks and CSVs (default: results/<profile>/parity-<device>)")
    ap.add_argument("--jobs", type=int, default=2, help="fits run side by side")
    ap.add_argument("--threads", type=int, help="threads per fit (default: the profile's, else 1)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a preset value on top of the profile's, value in YAML as for `dip fit --set` "
                         "(e.g. --set iterations=2000)")
    ap.add_argument("--margin", type=float, default=0.2, help="equivalence margin in dB (default 0.2)")
    ap.add_argument("--alpha", type=float, default=0.05, help="TOST level: the (1 - 2 alpha) interval is used")
    ap.add_argument("--min-images", type=int, default=4)
    ap.add_argument("--min-seeds", type=int, default=6)
    ap.add_argument("--json", type=Path, help="also write every fit's numbers and the verdicts here")
    return ap.parse_args(argv)


def plan(args: argparse.Namespace, config: dict[str, Any]) -> tuple[list[dict[str, Any]], Path, str]:
    """Every fit of the study (reference mode and each compared mode, per image and seed), the output folder, and
    a line describing the settings."""
    if args.profile not in config["profiles"]:
        fail(f"config/config.yaml has no profile {args.profile!r} ({', '.join(config['profiles'])})")
    cuda_only = [m for m in args.modes if MODES[m].cuda_only]
    if args.device == "cpu" and cuda_only:
        fail(f"--modes {' '.join(cuda_only)} exist only on CUDA (give --device cuda)")
    try:
        sets = dict(parse_key_value(kv) for kv in args.set)
    except ValueError as e:
        fail(f"--set: {e}")
    prof = config["profiles"][args.profile]
    overrides = {**prof["overrides"].get(TASK, {}), **sets}
    threads = args.threads or prof["threads"] or 1
    out = args.out or ROOT / "results" / args.profile / f"parity-{args.device}"
    drop = config["tasks"][TASK]["drop"]
    jobs = []
    for name in args.images:
        image = table1_image(name, args.data, "parity")
        for seed in args.seeds:
            mask = make_mask(image, seed, drop, out / "masks" / f"{name}_seed{seed}.png", "parity")
            for mode in [REFERENCE, *args.modes]:
                settings = {"profile": args.profile, "crop": prof["crop"], "overrides": overrides,
                            "threads": threads, "device": args.device, "drop": drop}
                jobs.append({"name": name, "seed": seed, "mode": mode, "image": str(image), "mask": str(mask),
                             "out": str(out / "fits" / mode / name / f"seed{seed}"), "crop": prof["crop"],
                             "threads": threads, "device": args.device, "settings": settings,
                             "tag": json.dumps(settings, sort_keys=True)})
    return jobs, out, (f"{args.profile} profile: crop {prof['crop']}, {overrides}, threads {threads}, "
                       f"device {args.device}")


def run_jobs(todo: list[dict[str, Any]], jobs: int) -> None:
    """Run the fits not done yet, ``jobs`` side by side; the first failure stops the study in one line."""
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(one_fit, j) for j in todo]
        for i, f in enumerate(as_completed(futures), 1):
            try:
                r = f.result()
            except Exception as e:  # DipError and the like: one line, nothing else started
                pool.shutdown(wait=True, cancel_futures=True)
                fail(f"a fit failed: {e}")
            print(f"parity: {i}/{len(todo)} {r['mode']} {r['name']} seed {r['seed']}: {r['psnr']:.2f} dB",
                  file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    args = parse_args(argv)
    jobs, out, settings = plan(args, project_config())
    todo = [j for j in jobs if not done(j)]
    print(f"parity: {len(todo)} of {len(jobs)} fits to run into {out} ({settings})", file=sys.stderr, flush=True)
    if todo:
        run_jobs(todo, args.jobs)
    results = read_results(jobs)
    table, verdicts = study(results, args.modes, args)
    print_tables(table, verdicts, args)
    stats.write_csv(table, out / "parity.csv", keys=("mode", "task", "image"))
    write_text(out / "eligibility.csv", verdicts.to_csv(index=False, lineterminator="\n"))
    if args.json:
        write_text(args.json, json.dumps({"results": results.to_dict("records"), "per_image": table.to_dict("records"),
                                          "verdicts": verdicts.to_dict("records")}, indent=2, default=str) + "\n")
    print(f"\nparity: wrote {out / 'parity.csv'} and {out / 'eligibility.csv'}", file=sys.stderr)
    return verdicts


if __name__ == "__main__":
    main()
