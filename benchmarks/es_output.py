"""ES-EMV's output before and after issue 22: the perturbed x_{t*} against the unperturbed f_θ(z) at the same t*.

    python -m benchmarks.es_output --images barbara,fingerprint,house --seeds 0 [--profile ci]

Each fit is the pipeline's fit of the profile (config/config.yaml: crop, overrides, precision, threads; Table 1
images with their Bernoulli mask of ``dip mask``), run once with a second ES-EMV rule attached that keeps x_{t*}
as the rule did before (no parameters). Both rules see the same outputs, so they pick the same t*; the rows give
the ground-truth PSNR of the final iterate, of x_{t*} (old ``psnr_es``) and of f_{θ_{t*}}(z) (new ``psnr_es``),
and the oracle. Nothing here changes a fit: the extra rule only observes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.common import make_mask, project_config, table1_image


def one_fit(image: str, seed: int, profile: str, data: Path | None, tmp: Path) -> dict:
    from dip.core.quality import psnr
    from dip.core.stopping import VarianceStop
    from dip.data.images import as_chw, to_uint8
    from dip.data.presets import resolve
    from dip.engine.fit import Fit, FitRequest

    cfg = project_config()
    prof, task = cfg["profiles"][profile], cfg["tasks"]["table1"]
    path = table1_image(image, data, "es_output")
    mask = make_mask(path, seed, task["drop"], tmp / f"{image}_{seed}.png", "es_output")
    params = resolve(task["preset"], prof.get("overrides", {}).get("table1", {}))
    req = FitRequest(image=path, mask=mask, gt=path, out=tmp / f"{image}_{seed}", preset=task["preset"],
                     params=params, seed=seed, crop=prof.get("crop"), precision=prof.get("precision", "fp32"),
                     threads=prof.get("threads"), device=prof.get("device", "cpu"))
    fit = Fit(req, progress=False)
    old = VarianceStop(params["es_alpha"], params["es_patience"], fit.device)  # x_{t*}, as before issue 22
    fit.observers["es_perturbed"] = old
    m = fit.run()
    gt = as_chw(to_uint8(fit.inputs.gt))
    x_star = as_chw(to_uint8(old.result()[1][0].cpu().numpy()))
    assert old.result()[0] == m["es_iter"]
    return {"image": image, "seed": seed, "final": m["psnr"], "es_x_t": psnr(gt, x_star), "es_f_z": m["psnr_es"],
            "oracle": m["psnr_best"], "es_iter": m["es_iter"], "es_fired_at": m["es_fired_at"],
            "iterations": m["iterations"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.es_output", description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="barbara,fingerprint,house")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--profile", default="ci")
    ap.add_argument("--data", type=Path)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for image in args.images.split(","):
            for seed in map(int, args.seeds.split(",")):
                r = one_fit(image, seed, args.profile, args.data, Path(tmp))
                rows.append(r)
                print(", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()),
                      flush=True)
    gain = [r["es_f_z"] - r["es_x_t"] for r in rows]
    print(f"f(z) at t* minus x_t* : mean {sum(gain) / len(gain):+.2f} dB over {len(rows)} fits "
          f"(min {min(gain):+.2f}, max {max(gain):+.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
