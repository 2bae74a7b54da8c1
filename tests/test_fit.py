"""`dip fit`: outputs, determinism, backtracking, presets and overrides (stopping and resuming: test_checkpoints.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY, dip, make_image, make_mask


def fit(img: Path, mask: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    r = dip("fit", "--image", img, "--mask", mask, "--preset", "table1", "--out", out, "--iterations", "30",
            "--threads", "1", *TINY, *extra)
    assert r.returncode == 0, r.stderr
    return r


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_fit_writes_every_output(tmp_path, img, mask):
    out = tmp_path / "out"
    r = fit(img, mask, out, "--tag", "profile=unit", "--tag", "image=synthetic")
    assert sorted(p.name for p in out.iterdir()) == ["curve.csv", "metrics.json", "observed.png", "output.png",
                                                     "output_ema.png", "output_es.png"]
    m = metrics(out)
    for key in ("psnr", "ssim", "psnr_best", "psnr_best_iter", "psnr_masked", "iterations", "seconds_per_iter",
                "wall_seconds", "backtracks", "seed", "device", "precision", "threads", "torch", "psnr_ema",
                "psnr_es", "es_iter", "es_fired_at", "output_iteration"):
        assert key in m, key
    assert m["iterations"] == 30 and m["threads"] == 1 and m["device"] == "cpu" and m["precision"] == "fp32"
    assert m["tags"] == {"profile": "unit", "image": "synthetic"}
    assert len(m["inputs"]["image"]["sha256"]) == 64 and len(m["inputs"]["mask"]["sha256"]) == 64
    assert m["params"]["n_down"] == [8, 8, 8] and m["params"]["lr"] == 0.001  # overrides, then the preset
    assert 5 < m["psnr"] < 60 and 0 < m["ssim"] <= 1
    curve = (out / "curve.csv").read_text().splitlines()
    assert curve[0] == "iteration,loss,psnr_masked,psnr,ssim"
    # every eval_every-th iteration, the last one, and the final iterate after the last step (iteration 30)
    assert [int(line.split(",")[0]) for line in curve[1:]] == [0, 10, 20, 29, 30]
    psnrs = [float(line.split(",")[3]) for line in curve[1:]]
    # the oracle is the best of every evaluation and of the written output (the claim): never below the claim
    candidates = [*zip(psnrs, [0, 10, 20, 29, 30]), (m["psnr"], 30)]
    assert (m["psnr_best"], m["psnr_best_iter"]) == max(candidates) and m["psnr_best"] >= m["psnr"]
    assert m["output_iteration"] == 30
    out_img = np.asarray(Image.open(out / "output.png"))
    assert out_img.shape == (32, 32) and out_img.dtype == np.uint8
    # the psnr claim is the saved 8-bit output against the ground truth: anyone can recompute it
    from skimage.metrics import peak_signal_noise_ratio
    gt = np.asarray(Image.open(img))
    assert m["psnr"] == pytest.approx(peak_signal_noise_ratio(gt, out_img, data_range=255), abs=1e-9)
    # the observation: image x mask
    obs = np.asarray(Image.open(out / "observed.png"))
    known = np.asarray(Image.open(mask)) > 0
    assert (obs[~known] == 0).all() and (obs[known] == gt[known]).all()
    assert "psnr" in r.stdout


def test_fitting_improves_psnr(tmp_path, img, mask):
    out = tmp_path / "out"
    fit(img, mask, out, "--iterations", "120", "--lr", "0.01")
    rows = [line.split(",") for line in (out / "curve.csv").read_text().splitlines()[1:]]
    assert float(rows[-1][3]) > float(rows[0][3]) + 3  # a real fit, not noise


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path, img, mask):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    fit(img, mask, a)
    fit(img, mask, b)
    fit(img, mask, c, "--seed", "1")
    assert (a / "output.png").read_bytes() == (b / "output.png").read_bytes()
    assert metrics(a)["psnr"] == metrics(b)["psnr"]
    assert (a / "curve.csv").read_text() == (b / "curve.csv").read_text()
    assert metrics(a)["psnr"] != metrics(c)["psnr"]


def test_bf16_and_channels_last_modes_run_and_are_deterministic(tmp_path, img, mask):
    a, b = tmp_path / "a", tmp_path / "b"
    fit(img, mask, a, "--precision", "bf16")
    fit(img, mask, b, "--precision", "bf16")
    assert metrics(a)["precision"] == "bf16" and metrics(a)["channels_last"] is True
    assert (a / "output.png").read_bytes() == (b / "output.png").read_bytes()


def test_rgb_image_and_no_mask(tmp_path):
    img = make_image(tmp_path / "rgb.png", (40, 24), rgb=True)  # odd size: padded to 40x24 -> 48x32
    out = tmp_path / "out"
    r = dip("fit", "--image", img, "--preset", "fig7_text", "--out", out, "--iterations", "12", "--threads", "1",
            *TINY[:6], "--eval-every", "5")
    assert r.returncode == 0, r.stderr
    m = metrics(out)
    assert m["channels"] == 3 and (m["height"], m["width"]) == (40, 24) and m["inputs"]["mask"] is None
    assert np.asarray(Image.open(out / "output.png")).shape == (40, 24, 3)


def test_crop_is_central_and_recorded(tmp_path):
    img = make_image(tmp_path / "big.png", (64, 48))
    msk = make_mask(tmp_path / "m.png", (64, 48))
    out = tmp_path / "out"
    fit(img, msk, out, "--crop", "32")
    assert metrics(out)["crop"] == {"top": 16, "left": 8, "height": 32, "width": 32}
    assert np.asarray(Image.open(out / "output.png")).shape == (32, 32)


def _tiny_fit(img: Path, mask: Path, out: Path, **params):
    """A real :class:`dip.engine.fit.Fit` of the tiny network (no subprocess), for tests that inject failures."""
    from dip.data.presets import resolve
    from dip.engine.fit import Fit, FitRequest

    tiny = {"n_down": [8, 8, 8], "n_up": [8, 8, 8], "n_skip": [2, 2, 2], "iterations": 12, "eval_every": 2,
            "lr": 0.01, **params}
    return Fit(FitRequest(image=img, mask=mask, gt=img, out=out, preset="table1", params=resolve("table1", tiny),
                          threads=1), progress=False)


def _equal_states(a: dict, b: dict) -> bool:
    """Parameters, buffers and Adam state of two snapshots are bit-for-bit equal."""
    import torch

    nets = a["net"].keys() == b["net"].keys() and all(torch.equal(a["net"][k], b["net"][k]) for k in a["net"])
    sa, sb = a["opt"]["state"], b["opt"]["state"]
    opts = sa.keys() == sb.keys() and all(
        (torch.equal(v, sb[i][k]) if torch.is_tensor(v) else v == sb[i][k]) for i in sa for k, v in sa[i].items())
    return nets and opts


def test_backtracking_restores_the_last_good_state_exactly(tmp_path, img, mask):
    # A non-finite loss injected at iteration 6 (an evaluation): the guard must put back the snapshot taken at
    # iteration 4 (parameters and Adam state, bit for bit), skip that Adam step, count one backtrack, and go on.
    from dip.core.guard import snapshot

    f = _tiny_fit(img, mask, tmp_path / "out")
    real = f.step.gradients
    seen: dict = {}

    def gradients():
        loss = real()
        it = len(seen.setdefault("its", []))
        seen["its"].append(it)
        if it == 6:
            seen["good"] = snapshot(f.net, f.optimizer) if f.guard.good is None else f.guard.good
            seen["good_iteration"] = f.guard.good_iteration
            return loss * float("nan")
        return loss

    f.step.gradients = gradients
    real_iterate = f.iterate

    def iterate(it):
        real_iterate(it)
        if it == 6:
            seen["after"] = snapshot(f.net, f.optimizer)

    f.iterate = iterate
    m = f.run()
    assert seen["good_iteration"] == 4
    assert _equal_states(seen["after"], seen["good"])  # restored exactly, and no Adam step on top of it
    assert m["backtracks"] == 1
    rows = [r["iteration"] for r in f.curve.rows]
    assert 6 not in rows and rows == [0, 2, 4, 8, 10, 11, 12]
    good_psnr = {r["iteration"]: r["psnr"] for r in f.curve.rows}[4]
    assert m["psnr"] >= good_psnr - 0.05  # 8-bit rounding of the written file only


def test_guard_checks_the_final_iterate_and_writes_the_last_good_state(tmp_path, img, mask):
    # The step after the last evaluation used to go unchecked: a fit could write a diverged iterate. Garbage
    # injected into the parameters by the very last Adam step must be refused and the last good state written.
    import torch

    from dip.data.images import to_uint8

    f = _tiny_fit(img, mask, tmp_path / "out")
    real = f.step.update
    count = [0]

    def update():
        real()
        count[0] += 1
        if count[0] == f.total:  # the last step
            with torch.no_grad():
                for p in f.net.parameters():
                    p.fill_(1e6)

    f.step.update = update
    m = f.run()
    assert m["backtracks"] == 1 and m["output_iteration"] == f.total - 1 == 11
    assert f.curve.rows[-1]["iteration"] == 11  # the refused final iterate is not in the curve
    written = np.asarray(Image.open(tmp_path / "out" / "output.png"))
    assert np.array_equal(written, to_uint8(f.estimate()))  # the restored state's estimate is what was written
    last_good = f.curve.rows[-1]["psnr"]
    assert m["psnr"] >= last_good - 0.05 and m["psnr"] > 15


def test_a_final_iterate_that_cannot_be_recovered_writes_nothing(tmp_path, img, mask):
    import torch

    from dip.errors import DivergedError

    f = _tiny_fit(img, mask, tmp_path / "out", max_backtracks=1)
    real, count = f.step.update, [0]

    def update():
        real()
        count[0] += 1
        if count[0] >= f.total - 2:  # iterations 10 and 11 diverge: one restore is allowed, the final check is the 2nd
            with torch.no_grad():
                for p in f.net.parameters():
                    p.fill_(float("nan"))

    f.step.update = update
    with pytest.raises(DivergedError, match="could not recover"):
        f.run()
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.*"))


def test_unrecoverable_divergence_stops_with_a_clear_error(tmp_path, img, mask):
    out = tmp_path / "out"
    r = dip("fit", "--image", img, "--mask", mask, "--preset", "table1", "--out", out, "--iterations", "200",
            "--threads", "1", *TINY[:6], "--eval-every", "2", "--lr", "1e12", "--set", "max_backtracks=3")
    assert r.returncode == 3
    assert "could not recover" in r.stderr.strip().splitlines()[-1]
    assert not out.exists()


def test_mask_command_is_reproducible(tmp_path, img):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for out, seed in ((a, 0), (b, 0), (c, 1)):
        assert dip("mask", "--bernoulli", "0.5", "--seed", seed, "--like", img, "-o", out).returncode == 0
    assert a.read_bytes() == b.read_bytes() and a.read_bytes() != c.read_bytes()
    m = np.asarray(Image.open(a))
    assert set(np.unique(m)) == {0, 255} and m.shape == (32, 32)
    assert 0.35 < (m == 0).mean() < 0.65


def test_inpaint_writes_only_the_picture(tmp_path, img, mask):
    out = tmp_path / "restored.png"
    r = dip("inpaint", img, mask, "-o", out, "--iterations", "10", "--threads", "1", *TINY[:6],
            "--mask-convention", "white-known")
    assert r.returncode == 0, r.stderr
    assert np.asarray(Image.open(out)).shape == (32, 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png", "mask.png", "restored.png"]


def test_describe_prints_blocks_and_parameter_count():
    r = dip("describe", "--preset", "table1", "--size", "64x64")
    assert r.returncode == 0, r.stderr
    assert "parameters: 2,217,573" in r.stdout
    assert "d1" in r.stdout and "s5" in r.stdout and "u3" in r.stdout


def test_guard_snapshot_is_a_copy_that_restores_exactly(tmp_path, img, mask):
    # The guard's snapshot (guard.snapshot, tensor-wise clones) must not alias the live parameters or Adam state.
    import torch

    from dip.core.guard import restore, snapshot

    f = _tiny_fit(img, mask, tmp_path / "o", iterations=10**9, eval_every=10**9)
    for it in range(1, 4):
        f.iterate(it)
    snap = snapshot(f.net, f.optimizer)
    before = {k: v.clone() for k, v in f.net.state_dict().items()}
    adam_before = {i: {k: v.clone() for k, v in s.items()} for i, s in f.optimizer.state_dict()["state"].items()}
    for it in range(4, 7):
        f.iterate(it)
    assert any(not torch.equal(before[k], v) for k, v in f.net.state_dict().items())  # the fit moved on...
    assert all(torch.equal(before[k], v) for k, v in snap["net"].items())  # ...the snapshot did not
    assert all(torch.equal(adam_before[i][k], v) for i, s in snap["opt"]["state"].items() for k, v in s.items())
    restore(f.net, f.optimizer, snap)
    assert all(torch.equal(before[k], v) for k, v in f.net.state_dict().items())
    f.close()


def test_cuda_graph_option(tmp_path, img, mask):
    # auto means "on CUDA only": a CPU fit records it off; asking for it on a CPU is a one-line error.
    fit(img, mask, tmp_path / "a", "--device", "cpu")
    assert metrics(tmp_path / "a")["cuda_graph"] is False
    r = dip("fit", "--image", img, "--mask", mask, "--preset", "table1", "--out", tmp_path / "b", "--device", "cpu",
            "--cuda-graph", "on", *TINY)
    assert r.returncode == 2 and r.stderr.strip() == (
        "dip: error: --cuda-graph: CUDA graphs need a CUDA device, this fit runs on cpu")
    assert not (tmp_path / "b").exists()
