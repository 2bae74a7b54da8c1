"""`dip fit`: outputs, determinism, backtracking, presets and overrides (stopping and resuming: test_checkpoints.py)."""

from __future__ import annotations

import json
import os
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
    assert sorted(p.name for p in out.iterdir()) == ["curve.csv", "metrics.json", "observed.png", "output.png"]
    m = metrics(out)
    for key in ("psnr", "ssim", "psnr_best", "psnr_best_iter", "psnr_masked", "iterations", "seconds_per_iter",
                "wall_seconds", "backtracks", "seed", "device", "precision", "threads", "torch"):
        assert key in m, key
    assert m["iterations"] == 30 and m["threads"] == 1 and m["device"] == "cpu" and m["precision"] == "fp32"
    assert m["tags"] == {"profile": "unit", "image": "synthetic"}
    assert len(m["inputs"]["image"]["sha256"]) == 64 and len(m["inputs"]["mask"]["sha256"]) == 64
    assert m["params"]["n_down"] == [8, 8, 8] and m["params"]["lr"] == 0.001  # overrides, then the preset
    assert 5 < m["psnr"] < 60 and 0 < m["ssim"] <= 1
    curve = (out / "curve.csv").read_text().splitlines()
    assert curve[0] == "iteration,loss,psnr_masked,psnr,ssim"
    assert [int(line.split(",")[0]) for line in curve[1:]] == [0, 10, 20, 29]
    psnrs = [float(line.split(",")[3]) for line in curve[1:]]
    assert m["psnr_best"] == max(psnrs) and m["psnr_best_iter"] == [0, 10, 20, 29][int(np.argmax(psnrs))]
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


def test_backtracking_restores_after_nan_and_counts_it(tmp_path, img, mask):
    # An absurd learning rate makes the loss blow up; the guard restores the last good state and goes on.
    out = tmp_path / "out"
    r = dip("fit", "--image", img, "--mask", mask, "--preset", "table1", "--out", out, "--iterations", "60",
            "--threads", "1", *TINY[:6], "--eval-every", "2", "--lr", "1e6", "--set", "max_backtracks=1000")
    assert r.returncode == 0, r.stderr
    m = metrics(out)
    assert m["backtracks"] > 0 and "restoring the last good state" in r.stderr
    assert np.isfinite(m["psnr"])


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
    r = dip("inpaint", img, mask, "-o", out, "--iterations", "10", "--threads", "1", *TINY[:6])
    assert r.returncode == 0, r.stderr
    assert np.asarray(Image.open(out)).shape == (32, 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png", "mask.png", "restored.png"]


def test_describe_prints_blocks_and_parameter_count():
    r = dip("describe", "--preset", "table1", "--size", "64x64")
    assert r.returncode == 0, r.stderr
    assert "parameters: 2,217,573" in r.stdout
    assert "d1" in r.stdout and "s5" in r.stdout and "u3" in r.stdout


def test_guard_snapshot_is_a_copy_that_restores_exactly(tmp_path, img, mask):
    # The guard's snapshot (Fit._state, tensor-wise clones) must not alias the live parameters or Adam state.
    import torch

    from dip.fit import Fit, FitRequest
    from dip.presets import resolve

    params = resolve("table1", {"n_down": [8, 8, 8], "n_up": [8, 8, 8], "n_skip": [2, 2, 2], "eval_every": 10**9})
    f = Fit(FitRequest(image=img, mask=mask, out=tmp_path / "o", preset="table1", params=params, threads=1),
            progress=False)
    f.setup()
    bar = type("Bar", (), {"update": lambda *a: None, "report": lambda *a: None})()
    for it in range(1, 4):
        f.iterate(it, 10**9, bar)
    snap = f._state()
    before = {k: v.clone() for k, v in f.net.state_dict().items()}
    adam_before = {i: {k: v.clone() for k, v in s.items()} for i, s in f.opt.state_dict()["state"].items()}
    for it in range(4, 7):
        f.iterate(it, 10**9, bar)
    assert any(not torch.equal(before[k], v) for k, v in f.net.state_dict().items())  # the fit moved on...
    assert all(torch.equal(before[k], v) for k, v in snap["net"].items())  # ...the snapshot did not
    assert all(torch.equal(adam_before[i][k], v) for i, s in snap["opt"]["state"].items() for k, v in s.items())
    f.net.load_state_dict(snap["net"])
    f.opt.load_state_dict(snap["opt"])
    assert all(torch.equal(before[k], v) for k, v in f.net.state_dict().items())
    f.pool.shutdown()


def test_cuda_graph_option(tmp_path, img, mask):
    # auto means "on CUDA only": a CPU fit records it off; asking for it on a CPU is a one-line error.
    fit(img, mask, tmp_path / "a", "--device", "cpu")
    assert metrics(tmp_path / "a")["cuda_graph"] is False
    r = dip("fit", "--image", img, "--mask", mask, "--preset", "table1", "--out", tmp_path / "b", "--device", "cpu",
            "--cuda-graph", "on", *TINY)
    assert r.returncode == 2 and r.stderr.strip() == (
        "dip: error: --cuda-graph: CUDA graphs need a CUDA device, this fit runs on cpu")
    assert not (tmp_path / "b").exists()
