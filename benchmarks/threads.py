"""Fit throughput on this machine: 2 concurrent 1-thread fits vs 1 fit with 2 threads (the same 2 fits in turn).

    .venv/bin/python -m benchmarks.threads                  # quick and ci profiles, 3 rounds (~9 min)
    .venv/bin/python -m benchmarks.threads --profiles ci --rounds 5

Each fit is a real ``dip fit`` process with a profile's crop and overrides (config/config.yaml) on a table1
image with a 50% mask, so start-up (imports), evaluation and output writing count as they do in the pipeline.
Per round, interleaved: "2x1": two fits (seeds 0 and 1) side by side with --threads 1; "1x2": the same two
fits one after the other with --threads 2. Throughput = 2 fits / wall seconds; the loop-only rate
(1 / seconds_per_iter from metrics.json, summed over fits that run at once) is shown beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import make_mask, project_config, table1_image


def fit_cmd(image: Path, mask: Path, out: Path, prof: dict[str, Any], seed: int, threads: int,
            iterations: int | None) -> list[str]:
    """The pipeline's ``dip fit`` command line for one table1 fit under profile ``prof``."""
    cmd = [sys.executable, "-m", "dip", "fit", "--image", str(image), "--mask", str(mask), "--preset", "table1",
           "--device", "cpu", "--precision", prof["precision"], "--threads", str(threads), "--seed", str(seed),
           "--out", str(out), "--no-progress"]
    overrides = dict(prof["overrides"].get("table1", {}))
    if iterations:
        overrides["iterations"] = iterations
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={json.dumps(value)}"]
    if prof["crop"]:
        cmd += ["--crop", str(prof["crop"])]
    return cmd


def run_batch(cmds: list[list[str]], concurrent: bool) -> tuple[float, list[dict[str, Any]]]:
    """Run the fits side by side or one after the other; wall seconds and their metrics.json."""
    t0 = time.perf_counter()
    if concurrent:
        procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in cmds]
        codes = [p.wait() for p in procs]
    else:
        codes = [subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode for c in cmds]
    wall = time.perf_counter() - t0
    if any(codes):
        sys.exit(f"threads: a fit failed ({codes}): {' '.join(cmds[0])}")
    metrics = [json.loads((Path(c[c.index("--out") + 1]) / "metrics.json").read_text()) for c in cmds]
    return wall, metrics


def bench_profile(name: str, prof: dict[str, Any], image: Path, rounds: int, iterations: int | None,
                  tmp: Path) -> dict[str, Any]:
    """Interleaved rounds of 2x1 and 1x2 for one profile; medians and the throughput ratios."""
    mask = make_mask(image, 0, 0.5, tmp / f"mask-{name}.png", "threads")
    configs = {"2x1": (1, True), "1x2": (2, False)}
    res: dict[str, dict[str, list[float]]] = {k: {"fits_per_s": [], "its_per_s": []} for k in configs}
    for r in range(rounds):
        for label in (configs if r % 2 == 0 else list(configs)[::-1]):
            threads, concurrent = configs[label]
            cmds = [fit_cmd(image, mask, tmp / f"{name}-{label}-r{r}-s{s}", prof, s, threads, iterations)
                    for s in (0, 1)]
            wall, metrics = run_batch(cmds, concurrent)
            rates = [1 / m["seconds_per_iter"] for m in metrics]  # iterations per second of each fit
            res[label]["fits_per_s"].append(2 / wall)
            # loop-only: concurrent fits add their rates; sequential ones share the time (harmonic mean)
            res[label]["its_per_s"].append(sum(rates) if concurrent else 2 / sum(1 / x for x in rates))
            print(f"  {name} round {r} {label}: {wall:.1f} s for 2 fits", file=sys.stderr, flush=True)
    med = {k: {q: statistics.median(v) for q, v in d.items()} for k, d in res.items()}
    return {"profile": name, "crop": prof["crop"], "channels": prof["overrides"]["table1"].get("n_down", ["?"])[0],
            "iterations": iterations or prof["overrides"]["table1"].get("iterations"), "raw": res, "median": med,
            "ratio_fits": med["2x1"]["fits_per_s"] / med["1x2"]["fits_per_s"],
            "ratio_loop": med["2x1"]["its_per_s"] / med["1x2"]["its_per_s"]}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", nargs="+", default=["quick", "ci"])
    ap.add_argument("--image", default="barbara", help="table1 image name (512x512; cropped by the profile)")
    ap.add_argument("--data", type=Path, help="data mirror (default: $DIP_DATA_MIRROR or ../shared/data)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, help="override the profiles' iterations (quick 800, ci 200) to "
                                                   "bound the run time")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    config = project_config()
    image = table1_image(args.image, args.data, "threads")
    out = []
    with tempfile.TemporaryDirectory(prefix="threads-") as tmp:
        for name in args.profiles:
            out.append(bench_profile(name, config["profiles"][name], image, args.rounds, args.iterations, Path(tmp)))
    print(f"\n{os.cpu_count()} CPUs, load avg now {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"medians of {args.rounds} interleaved rounds\n")
    print("| profile size | iterations | 2x1 fits/min | 1x2 fits/min | 2x1 / 1x2 (whole fits) | "
          "2x1 / 1x2 (loop only) |\n|---|---|---|---|---|---|")
    for r in out:
        m = r["median"]
        print(f"| {r['profile']}: crop {r['crop']}, {r['channels']} ch | {r['iterations']} | "
              f"{60 * m['2x1']['fits_per_s']:.2f} | {60 * m['1x2']['fits_per_s']:.2f} | {r['ratio_fits']:.2f}x | "
              f"{r['ratio_loop']:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
