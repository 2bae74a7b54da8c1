"""What a fit optimises and what it reports, checked from its files alone.

- The estimate (output.png, every curve row) is net(z) without the input perturbation N(0, reg_noise_std).
- The loss is the authors' `mse(out * mask, img * mask)`: the sum of squared errors over the known pixels
  divided by C*H*W (all pixels of the image, not the known ones, not the padded size).
- Evaluating (metrics every `eval_every` iterations) observes the fit and never changes it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from conftest import TINY, dip, make_image, make_mask
from dip.core.network import SkipConfig, SkipNet

# No backtracking: a restore would make fits with different evaluation schedules differ for another reason.
ARGS = ["--preset", "table1", "--threads", "1", "--no-progress", *TINY[:6], "--set", "backtrack_db=1000"]


def fit(img: Path, mask: Path, out: Path, *extra: str) -> dict:
    r = dip("fit", "--image", img, "--mask", mask, "--out", out, *ARGS, *extra)
    assert r.returncode == 0, r.stderr
    return json.loads((out / "metrics.json").read_text())


def curve(out: Path) -> dict[int, dict[str, float]]:
    with open(out / "curve.csv", newline="") as f:
        return {int(r["iteration"]): {k: float(v) for k, v in r.items() if v} for r in csv.DictReader(f)}


def test_the_estimate_is_net_of_z_without_the_perturbation(tmp_path, img, mask):
    # Fit B keeps its checkpoint of iteration 20 (the network's state after 20 steps, and z). Fit A stops after
    # those same 20 steps (nothing in the loop depends on the total), so its output.png must be that network
    # applied to z itself, rebuilt here from the checkpoint alone. The perturbation is huge (std 5; z itself is
    # U(0, 0.1)): an estimate that included it, or a loop that drew it for the estimate, gives another picture.
    noisy = ["--reg-noise-std", "5.0", "--eval-every", "10"]
    a = fit(img, mask, tmp_path / "a", "--iterations", "20", *noisy)
    fit(img, mask, tmp_path / "b", "--iterations", "21", *noisy, "--checkpoint-every", "20", "--keep-checkpoint")
    ck = torch.load(tmp_path / "b.ckpt" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ck["iteration"] == 20
    p = a["params"]
    net = SkipNet(SkipConfig(p["input_depth"], 1, p["n_down"], p["n_up"], p["n_skip"], p["k_down"], p["k_up"],
                             p["k_skip"], p["upsample"]))
    net.load_state_dict(ck["net"])
    net.train()  # as in the fit: BatchNorm normalises with the batch statistics
    torch.set_num_threads(1)
    with torch.no_grad():
        est = net(ck["z"])[0, 0, :32, :32].numpy()
    expected = np.clip(np.rint(est * 255.0), 0, 255).astype(np.int16)
    out = np.asarray(Image.open(tmp_path / "a" / "output.png")).astype(np.int16)
    assert np.abs(out - expected).max() <= 1 and (out == expected).mean() > 0.99  # float rounding at most
    gt = np.asarray(Image.open(img))
    assert a["psnr"] == pytest.approx(peak_signal_noise_ratio(gt, out.astype(np.uint8), data_range=255), abs=1e-9)
    # the curve's last row of B (iteration 20) measured the same estimate, before the 8-bit rounding
    assert curve(tmp_path / "b")[20]["psnr"] == pytest.approx(a["psnr"], abs=0.02)


def test_evaluating_does_not_change_the_fit(tmp_path, img, mask):
    # Evaluations every 3 or every 7 iterations: the same 40 steps, the same output.png, bit for bit.
    a = fit(img, mask, tmp_path / "a", "--iterations", "40", "--eval-every", "3")
    b = fit(img, mask, tmp_path / "b", "--iterations", "40", "--eval-every", "7")
    assert (tmp_path / "a" / "output.png").read_bytes() == (tmp_path / "b" / "output.png").read_bytes()
    assert a["psnr"] == b["psnr"]
    ca, cb = curve(tmp_path / "a"), curve(tmp_path / "b")
    shared = sorted(set(ca) & set(cb))  # iterations 0, 21, 39 and the final iterate 40
    assert shared == [0, 21, 39, 40] and all(ca[i] == cb[i] for i in shared)


def test_loss_is_the_masked_squared_error_over_all_pixels(tmp_path):
    # Without the perturbation the loss of a row is computed on the same net(z) as its masked PSNR, so
    #   loss = sum_known (out - img)^2 / (C*H*W) = MSE_known * n_known / (H*W) = 10^(-psnr_masked/10) * known.
    # 30x30 is padded to 32x32 and the mask keeps ~half of the pixels: normalising by the padded size or by
    # the number of known pixels breaks the equality.
    img = make_image(tmp_path / "img.png", (30, 30))
    mask = make_mask(tmp_path / "mask.png", (30, 30))
    known = (np.asarray(Image.open(mask)) > 0).mean()
    assert 0.4 < known < 0.6
    fit(img, mask, tmp_path / "out", "--iterations", "30", "--reg-noise-std", "0", "--eval-every", "10")
    rows = curve(tmp_path / "out")
    assert sorted(rows) == [0, 10, 20, 29, 30]
    assert "loss" not in rows.pop(30)  # the final iterate after the last step: no training forward, no loss
    for it, r in rows.items():
        assert r["loss"] == pytest.approx(10 ** (-r["psnr_masked"] / 10) * known, rel=1e-4), it
