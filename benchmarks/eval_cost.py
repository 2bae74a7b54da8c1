"""Share of a fit's time spent in evaluation, per profile, with the parts of one evaluation.

    .venv/bin/python -m benchmarks.eval_cost                         # ci and paper settings on this machine
    python -m benchmarks.eval_cost --profiles paper --device cuda    # on a GPU

A real :class:`dip.engine.fit.Fit` (profile crop, overrides, precision, threads; paper = full 512x512 barbara) is
built, then training iterations and evaluations are timed, interleaved. The share is
t_eval / (eval_every * t_iter + t_eval), i.e. what ``eval_fraction`` in metrics.json estimates, where t_eval
is the synchronous part of :meth:`Fit.evaluate` (estimate, masked PSNR, good-state snapshot).
PSNR/SSIM against the ground truth run on a worker thread beside the next iterations; they are timed
alone and shown as a second share (an upper bound: on an idle core they cost the loop nothing).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.common import make_mask, project_config, table1_image
from benchmarks.worker import NEVER


def timed(fn: Callable[[], Any], sync: Callable[[], None]) -> float:
    """Seconds for fn(), with the device synchronized before and after."""
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def measure(profile: str, prof: dict[str, Any], image: Path, device: str, threads: int | None, repeats: int,
            tmp: Path) -> dict[str, Any]:
    """Time iterations and evaluations of one profile's fit, interleaved; medians and the shares."""
    from dip.core import compute
    from dip.core.guard import snapshot
    from dip.core.quality import psnr, psnr_known, ssim
    from dip.data.presets import resolve
    from dip.engine.fit import Fit, FitRequest

    mask = make_mask(image, 0, 0.5, tmp / f"mask-{profile}.png", "eval_cost")
    overrides = prof["overrides"].get("table1", {})
    k = resolve("table1", overrides)["eval_every"]
    # The fit itself never evaluates: evaluations are timed apart, as Fit.iterate would run them every k.
    params = resolve("table1", {**overrides, "eval_every": NEVER, "iterations": NEVER})
    req = FitRequest(image=image, mask=mask, gt=image, out=tmp / f"out-{profile}", preset="table1",
                     params=params, device=device, threads=threads or prof["threads"],
                     precision=compute.resolve_precision(prof["precision"], compute.pick_device(device)),
                     crop=prof["crop"])
    fit = Fit(req, progress=False, quiet=True)
    sync = lambda: compute.synchronize(fit.device)  # noqa: E731
    fit.iterate(1)  # warm-up
    loss = float(fit.objective(fit.step.estimate()))
    fit.evaluate(0, loss)
    fit.curve.collect(wait=True)
    gt, out_np = fit.inputs.gt, fit.estimate()
    parts: dict[str, list[float]] = {k: [] for k in ("iteration", "evaluate", "estimate", "psnr_masked",
                                                       "snapshot", "psnr_ssim_gt")}
    for it in range(1 + k, 1 + k * (repeats + 1), k):
        parts["iteration"].append(timed(lambda: fit.iterate(it), sync))
        parts["evaluate"].append(timed(lambda: fit.evaluate(it, loss), sync))
        fit.curve.collect(wait=True)
        parts["estimate"].append(timed(fit.estimate, sync))
        parts["psnr_masked"].append(timed(lambda: psnr_known(fit.inputs.image, out_np, fit.inputs.known), sync))
        parts["snapshot"].append(timed(lambda: snapshot(fit.net, fit.optimizer), sync))
        parts["psnr_ssim_gt"].append(timed(lambda: (psnr(gt, out_np), ssim(gt, out_np)), sync))
    fit.close()
    med = {name: statistics.median(v) for name, v in parts.items()}
    h, w = fit.frame.size
    return {"profile": profile, "size": f"{h}x{w}", "eval_every": k, "threads": fit.placement.threads, **med,
            "share": med["evaluate"] / (k * med["iteration"] + med["evaluate"]),
            "share_async": med["psnr_ssim_gt"] / (k * med["iteration"] + med["evaluate"])}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", nargs="+", default=["ci", "paper"])
    ap.add_argument("--image", default="barbara", help="table1 image (512x512)")
    ap.add_argument("--data", type=Path, help="data mirror (default: $DIP_DATA_MIRROR or ../shared/data)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--threads", type=int, help="default: the profile's")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    config = project_config()
    image = table1_image(args.image, args.data, "eval_cost")
    with tempfile.TemporaryDirectory(prefix="eval_cost-") as tmp:
        rows = [measure(p, config["profiles"][p], image, args.device, args.threads, args.repeats, Path(tmp))
                for p in args.profiles]
    print(f"\nmedians of {args.repeats}; times in ms\n")
    print("| profile | size | threads | iteration | evaluate (sync) | = estimate + masked PSNR + snapshot | "
          "eval_every | share of loop (sync) | PSNR+SSIM vs GT (worker thread) | its share if it ran inline |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ms = lambda x: f"{1000 * x:.1f}"  # noqa: E731
        print(f"| {r['profile']} | {r['size']} | {r['threads']} | {ms(r['iteration'])} | {ms(r['evaluate'])} | "
              f"{ms(r['estimate'])} + {ms(r['psnr_masked'])} + {ms(r['snapshot'])} | {r['eval_every']} | "
              f"{100 * r['share']:.1f}% | {ms(r['psnr_ssim_gt'])} | {100 * r['share_async']:.1f}% |")
    return rows


if __name__ == "__main__":
    main()
