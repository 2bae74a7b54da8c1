"""Issue 22's study of ground-truth-free outputs: final iterate, average, ES-EMV, held-out validation, and a
combination, each against the oracle, over images and seeds.

    python -m benchmarks.stopping_rules run --regime quick --seeds 0,1,2 --out docs/stopping-study --jobs 2
    python -m benchmarks.stopping_rules run --regime noisy --seeds 0,1,2 --out docs/stopping-study --jobs 2
    python -m benchmarks.stopping_rules table docs/stopping-study/quick [--patience 200]

``run`` makes one fit per (image, seed) of a regime (the 11 Table 1 images with the pipeline's Bernoulli masks,
and kate with its text mask) and keeps, per fit, ``metrics.json`` and ``evals.csv``: at every evaluation the
ground-truth PSNR and the held-out PSNR of the estimate f_θ(z) and of the output average. A fit already recorded
is skipped, so an interrupted run goes on where it stopped. Every fit holds out ``--holdout`` (default 0.05) of
the known pixels (:mod:`dip.engine.holdout`, as ``dip inpaint`` does), so these are *separate fits* from Table 1's:
the claim's fits never hold pixels out. All rules are read from the same fit, so they are compared on equal terms.

Regimes (how each was chosen: docs/stopping.md, "Study"):

* ``quick``: the pipeline's quick profile (128x128 central crops, its overrides, 800 iterations).
* ``noisy``: the quick network on the ci profile's crops (64x64 central; kate: its window with text) with Gaussian
  noise of σ = 10/255 on the observed pixels (a real photo's sensor noise; the ground truth stays clean), 1000
  iterations, evaluated every 25: there the final iterate falls clearly below the oracle, because the network
  goes on to fit the noise.

``table`` replays each rule on the evaluations (no new fit; ``--patience`` is the validation rule's) and prints,
per rule, the mean gap to the oracle over images with its 95% interval (:func:`dip.report.stats.overall`: the
images are the unit, each image's gap the mean over its seeds), the worst image, how often the rule fired and the
iterations it saved where it did. The rules, as ``dip inpaint --stop auto`` would apply them:

* ``final``: f_θ(z) after the last iteration (the claim's output).
* ``ema``: the output average a_T (``ema_weight``).
* ``es``: ES-EMV: f_θ(z) at its minimum-variance iteration t* if it fired, else the final iterate.
* ``val``: f_θ(z) at the best held-out PSNR if the validation rule fired (no better value for ``patience``
  iterations), else the final iterate.
* ``val_ema``: the same rule on the average's held-out PSNR: the average at its best, else the final average.
* ``val_ema_end``: the same, but the fit runs every iteration (no ``--stop auto``): the average at its best
  held-out PSNR over the whole fit if the rule fired at some point, else the final average.
* ``default``: ``dip inpaint``'s DIP result (:func:`dip.inpaint.choice.candidate`): ``val_ema_end``'s average, or
  the final iterate where its held-out PSNR is higher (at a short budget the average still carries the early
  outputs; docs/stopping.md, "Which output `dip inpaint` writes").
* ``pick``: of the final iterate and the final average, the one with the better held-out PSNR (no stopping).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import ROOT, data_folder, make_mask, project_config, table1_image
from dip.inpaint.options import InpaintOptions

IMAGES = ["barbara", "boat", "house", "lena", "peppers", "cameraman", "couple", "fingerprint", "hill", "man",
          "montage", "kate"]
# per regime: the profile whose crops (crop, crop_at) the fits take, the noise on the observed pixels, and the
# overrides on top of the quick profile's
REGIMES: dict[str, dict[str, Any]] = {
    "quick": {"crops": "quick", "noise": 0.0, "overrides": {}},
    "noisy": {"crops": "ci", "noise": 10 / 255,
              "overrides": {"iterations": 1000, "eval_every": 25}},
}
HOLDOUT, PATIENCE = InpaintOptions.holdout, InpaintOptions.holdout_patience  # dip inpaint's defaults
RULES = ["final", "ema", "es", "val", "val_ema", "val_ema_end", "default", "pick"]


# ---------------------------------------------------------------------------------------------------- the fits
def inputs(image: str, seed: int, regime: str, data: Path | None, tmp: Path) -> tuple[str, Path, Path, Path]:
    """(task, observed image, mask, ground truth) of one fit; the observed image carries the regime's noise."""
    from PIL import Image

    cfg = project_config()
    if image == "kate":
        folder = data_folder(data)
        task, clean, mask = "fig7_text", folder / "fig7" / "kate.png", folder / "fig7" / "kate_mask.png"
    else:
        task, clean = "table1", table1_image(image, data, "stopping_rules")
        mask = make_mask(clean, seed, cfg["tasks"]["table1"]["drop"], tmp / f"{image}_{seed}_mask.png",
                         "stopping_rules")
    sigma = REGIMES[regime]["noise"]
    if not sigma:
        return task, clean, mask, clean
    x = np.asarray(Image.open(clean)).astype(np.float64) / 255.0
    rng = np.random.default_rng(1_000_003 * (seed + 1) + IMAGES.index(image))
    noisy = np.clip(np.rint(255.0 * (x + sigma * rng.standard_normal(x.shape))), 0, 255).astype(np.uint8)
    observed = tmp / f"{image}_{seed}_noisy.png"
    Image.fromarray(noisy).save(observed)
    return task, observed, mask, clean


def one_fit(image: str, seed: int, regime: str, data: Path | None, record: Path) -> str:
    """Run one fit of the study and write ``record`` (metrics.json, evals.csv) atomically; its summary line."""
    from dip.core.quality import psnr, psnr_known
    from dip.data.images import as_chw, to_uint8
    from dip.data.presets import resolve
    from dip.engine.fit import Fit, FitRequest

    cfg = project_config()
    prof, spec = cfg["profiles"]["quick"], REGIMES[regime]
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        task, observed, mask, clean = inputs(image, seed, regime, data, tmp)
        params = resolve(cfg["tasks"][task]["preset"], {**prof["overrides"][task], **spec["overrides"]})
        crops = cfg["profiles"][spec["crops"]]
        crop, crop_at = crops["crop"], (crops.get("crop_at") or {}).get(task)
        req = FitRequest(image=observed, mask=mask, gt=clean, out=tmp / "fit", preset=cfg["tasks"][task]["preset"],
                         params=params, seed=seed, crop=crop, crop_at=None if crop_at is None else tuple(crop_at),
                         precision="fp32", threads=1, device="cpu", holdout=HOLDOUT, holdout_patience=PATIENCE)
        rows: list[dict[str, float]] = []

        class StudyFit(Fit):
            def evaluate(self, it: int, loss: float | None, est: np.ndarray | None = None) -> bool:
                est = self.estimate() if est is None else est
                if not super().evaluate(it, loss, est):
                    return False
                held, gt = self.validation.held, as_chw(to_uint8(self.inputs.gt))
                avg = self.average.average[0].float().cpu().numpy()
                rows.append({"iteration": it, "psnr": psnr(gt, as_chw(to_uint8(est))),
                             "val": psnr_known(self.inputs.image, est, held),
                             "ema_psnr": psnr(gt, as_chw(to_uint8(avg))),
                             "ema_val": psnr_known(self.inputs.image, avg, held)})
                return True

        fit = StudyFit(req, progress=False, quiet=True)
        m = fit.run()
        m.update(task=task, image=image, seed=seed, regime=regime, noise=spec["noise"])
        part = record.with_name(record.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        pd.DataFrame(rows).to_csv(part / "evals.csv", index=False, float_format="%.4f")
        (part / "metrics.json").write_text(json.dumps(m, indent=1, default=str) + "\n")
        part.rename(record)
    return (f"{regime} {image} seed {seed}: final {m['psnr']:.2f}, ema {m['psnr_ema']:.2f}, "
            f"es {m['psnr_es']:.2f}, val {m['psnr_valstop']:.2f}, oracle {m['psnr_best']:.2f} dB")


def run(args: argparse.Namespace) -> int:
    todo = [(im, s) for im in args.images.split(",") for s in map(int, args.seeds.split(","))
            if not (args.out / args.regime / im / f"seed{s}").exists()]
    print(f"stopping_rules: {len(todo)} fits to make in {args.out / args.regime}", flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        jobs = {pool.submit(one_fit, im, s, args.regime, args.data, args.out / args.regime / im / f"seed{s}"):
                (im, s) for im, s in todo}
        for done in as_completed(jobs):
            print(done.result(), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------------- the rules
def stop_on(evals: pd.DataFrame, column: str, patience: int, to_the_end: bool = False) -> tuple[int | None, int]:
    """The validation rule replayed: (the evaluation where it fired or None, the row of the best value so far).
    ``to_the_end``: the fit goes on after the rule fired (no ``--stop auto``), so the best is over every
    evaluation, as :class:`dip.engine.holdout.Validation` keeps it."""
    best, best_row, fired = -math.inf, 0, None
    for row, (it, value) in enumerate(zip(evals["iteration"], evals[column])):
        if value > best:
            best, best_row = value, row
        elif fired is None and it - evals["iteration"].iloc[best_row] >= patience:
            fired = int(it)
            if not to_the_end:
                return fired, best_row
    return fired, best_row


def rules(m: dict[str, Any], evals: pd.DataFrame | None, patience: int) -> list[dict[str, Any]]:
    """Each rule's (PSNR, iteration it stopped or None) for one fit; the oracle is ``psnr_best``. Without
    ``evals`` (a pipeline fit: no held-out pixels) only the rules its metrics.json has: final, EMA, ES."""
    out = [{"rule": "final", "psnr": m["psnr"], "stopped": None}]
    if m.get("psnr_ema") is not None:
        out += [{"rule": "ema", "psnr": m["psnr_ema"], "stopped": None},
                {"rule": "es", "psnr": m["psnr_es"] if m["es_fired_at"] is not None else m["psnr"],
                 "stopped": m["es_fired_at"]}]
    if evals is not None:
        out += held_out_rules(m, evals, patience)
    tags = m.get("tags") or {}
    for r in out:
        r.update(task=m.get("task", tags.get("task")), image=m.get("image", tags.get("image")), seed=m["seed"],
                 oracle=m["psnr_best"], final=m["psnr"], iterations=m["iterations"])
    return out


def held_out_rules(m: dict[str, Any], evals: pd.DataFrame, patience: int) -> list[dict[str, Any]]:
    """The rules that read the held-out PSNRs of this study's ``evals`` (module docstring)."""
    out = []
    for rule, value, score, fallback in (("val", "val", "psnr", m["psnr"]),
                                         ("val_ema", "ema_val", "ema_psnr", m["psnr_ema"])):
        fired, best = stop_on(evals, value, patience)
        out.append({"rule": rule, "psnr": evals[score].iloc[best] if fired is not None else fallback,
                    "stopped": fired})
    fired, best = stop_on(evals, "ema_val", patience, to_the_end=True)
    # the average at its best held-out PSNR, else the final one
    average = evals["ema_psnr"].iloc[best] if fired is not None else m["psnr_ema"]
    held_out, last = evals["ema_val"].iloc[best if fired is not None else -1], evals.iloc[-1]
    return out + [
        {"rule": "val_ema_end", "psnr": average, "stopped": None},
        # dip inpaint's DIP result (dip.inpaint.choice.candidate): that average, or the final iterate if it
        # predicts the held-out pixels better
        {"rule": "default", "psnr": average if held_out >= last["val"] else m["psnr"], "stopped": None},
        # the end's two candidates, picked by their held-out PSNR
        {"rule": "pick", "psnr": m["psnr_ema"] if last["ema_val"] > last["val"] else m["psnr"], "stopped": None}]


def load(folder: Path, patience: int) -> pd.DataFrame:
    """Every fit under ``folder/<image>/seed<N>/``: this study's records, or a pipeline's (docs/paper-gpu-run)."""
    rows = []
    for metrics in sorted(folder.glob("*/seed*/metrics.json")):
        evals = metrics.with_name("evals.csv")
        rows += rules(json.loads(metrics.read_text()), pd.read_csv(evals) if evals.exists() else None, patience)
    if not rows:
        sys.exit(f"stopping_rules: {folder}: no fits (run `python -m benchmarks.stopping_rules run` first)")
    df = pd.DataFrame(rows)
    count = df.groupby(["image", "seed"])["rule"].transform("size")
    if (count < count.max()).any():  # compare the rules on the same fits: leave out those lacking some
        left = df.loc[count < count.max(), ["image", "seed"]].drop_duplicates()
        print(f"left out (made before their metrics had every rule): "
              f"{', '.join(f'{i} seed {s}' for i, s in left.itertuples(index=False))}\n")
        df = df[count == count.max()]
    return df


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per rule: gap to the oracle over images (95% interval), worst image, below the final iterate, fired, saved."""
    from dip.report.stats import compare, overall

    out = []
    for rule, g in df.groupby("rule", sort=False):
        long = pd.concat([g.assign(side="rule"), g.assign(side="oracle", psnr=g["oracle"])])
        per_image = compare(long, keys=["image"], side="side", value="psnr", a="rule", b="oracle")
        total = overall(per_image).iloc[0]
        by_image = g.groupby("image")[["psnr", "final", "oracle"]].mean()
        gap, vs_final = by_image["psnr"] - by_image["oracle"], by_image["psnr"] - by_image["final"]
        fired = g["stopped"].notna()
        saved = (1 - g.loc[fired, "stopped"] / g.loc[fired, "iterations"]).mean() if fired.any() else float("nan")
        out.append({"rule": rule, "fits": len(g), "images": len(by_image), "psnr": g["psnr"].mean(),
                    "gap": total["delta"], "low": total["ci_low"], "high": total["ci_high"],
                    "worst": f"{gap.idxmin()} {gap.min():+.2f}",
                    "worst_vs_final": f"{vs_final.idxmin()} {vs_final.min():+.2f}",
                    "fired": f"{int(fired.sum())}/{len(g)}", "saved": saved})
    return pd.DataFrame(out)


def table(args: argparse.Namespace) -> int:
    df = load(args.folder, args.patience)
    s = summary(df)
    show = pd.DataFrame({
        "rule": s["rule"], "fits (images)": [f"{f} ({i})" for f, i in zip(s["fits"], s["images"])],
        "mean PSNR": s["psnr"].map("{:.2f}".format),
        "gap to oracle [95% CI over images]": [f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                                              for d, lo, hi in zip(s["gap"], s["low"], s["high"])],
        "worst image (gap)": s["worst"], "worst image vs final": s["worst_vs_final"], "stopped early": s["fired"],
        "iterations saved where stopped": s["saved"].map(lambda v: "—" if pd.isna(v) else f"{100 * v:.0f}%")})
    oracle, final = df.groupby("image")["oracle"].mean(), df.groupby("image")["final"].mean()
    print(f"{args.folder}: {len(df.groupby(['image', 'seed']))} fits of {df['image'].nunique()} images (seeds "
          f"{', '.join(map(str, sorted(df['seed'].unique())))}), oracle {oracle.mean():.2f} dB, final iterate "
          f"{(final - oracle).mean():+.2f} dB to it (worst {(final - oracle).idxmin()} "
          f"{(final - oracle).min():+.2f}); validation patience {args.patience}\n")
    print(show.to_markdown(index=False, disable_numparse=True))
    if args.per_image:
        wide = df.pivot_table(index="image", columns="rule", values="psnr", aggfunc="mean")
        wide = wide[[r for r in RULES if r in wide.columns]]
        wide["oracle"] = oracle
        print("\n" + wide.map("{:.2f}".format).reset_index().to_markdown(index=False, disable_numparse=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.stopping_rules", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="make the study's fits (skips those already recorded)")
    r.add_argument("--regime", choices=sorted(REGIMES), required=True)
    r.add_argument("--images", default=",".join(IMAGES))
    r.add_argument("--seeds", default="0,1,2")
    r.add_argument("--out", type=Path, default=ROOT / "docs" / "stopping-study")
    r.add_argument("--jobs", type=int, default=1, help="fits at once (each on one thread)")
    r.add_argument("--data", type=Path)
    t = sub.add_parser("table", help="replay the rules on a regime's records and print the comparison")
    t.add_argument("folder", type=Path)
    t.add_argument("--patience", type=int, default=PATIENCE)
    t.add_argument("--per-image", action="store_true")
    args = ap.parse_args(argv)
    return run(args) if args.command == "run" else table(args)


if __name__ == "__main__":
    raise SystemExit(main())
