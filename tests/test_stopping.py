"""Output averaging and the ground-truth-free stopping rule (ES-EMV): the math on synthetic streams, then in a
real fit (images written, oracle, resume bit for bit, `dip inpaint --stop auto / --average`)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, dip
from dip.core.averaging import OutputAverage
from dip.core.stopping import VarianceStop
from dip.engine.fit import stopping_estimate

CPU = torch.device("cpu")


def feed(rule, frames) -> None:
    for t, x in enumerate(frames):
        rule.observe(t, x)


def test_output_average_equals_the_hand_computation():
    frames = [torch.full((1, 1, 2, 2), v) for v in (0.2, 0.6, 1.0, 0.0)]
    avg = OutputAverage(0.9)
    feed(avg, frames)
    a = 0.2
    for v in (0.6, 1.0, 0.0):
        a = 0.9 * a + 0.1 * v
    assert torch.allclose(avg.average, torch.full((1, 1, 2, 2), a), atol=1e-7)  # 0.2 -> 0.24 -> 0.316 -> 0.2844


def test_output_average_uses_its_weight():
    # w = 0.7, not the 0.9 above: a weight fixed in the code instead of taken from ema_weight fails here
    rng = np.random.default_rng(3)
    frames = [torch.from_numpy(rng.random((1, 1, 4, 4))) for _ in range(6)]
    avg = OutputAverage(0.7)
    feed(avg, frames)
    a, a_09 = frames[0].numpy(), frames[0].numpy()
    for f in frames[1:]:
        a, a_09 = 0.7 * a + 0.3 * f.numpy(), 0.9 * a_09 + 0.1 * f.numpy()
    assert np.allclose(avg.average.numpy(), a, rtol=0, atol=1e-12)
    assert np.abs(a - a_09).max() > 0.01  # the frames differ enough for the weight to show


def test_output_ema_png_is_the_average_of_the_training_outputs_with_the_given_weight(tmp_path, img, mask,
                                                                                      monkeypatch):
    # A real `dip fit --set ema_weight=0.5`; every training output x_t is recorded where the step makes it,
    # the average is rebuilt from them by hand, and output_ema.png must be it to within 8-bit rounding.
    from dip import cli
    from dip.core.step import EagerStep

    outputs: list[np.ndarray] = []
    gradients = EagerStep.gradients

    def recorded(self):
        loss = gradients(self)
        outputs.append(self.output[0].double().numpy().copy())  # x_t = f(z + sigma*eps_t), padded size
        return loss

    monkeypatch.setattr(EagerStep, "gradients", recorded)
    out = tmp_path / "out"
    assert cli.main(["fit", "--image", str(img), "--mask", str(mask), "--out", str(out), "--preset", "table1",
                     "--iterations", "30", "--threads", "1", "--no-progress", *map(str, TINY),
                     "--set", "ema_weight=0.5"]) == 0
    assert len(outputs) == 30 and json.loads((out / "metrics.json").read_text())["ema_weight"] == 0.5

    def average(w: float) -> np.ndarray:
        a = outputs[0]
        for x in outputs[1:]:
            a = w * a + (1 - w) * x
        return a[:, :32, :32] * 255.0

    written = np.asarray(Image.open(out / "output_ema.png")).astype(np.float64)[None]
    assert np.abs(written - average(0.5)).max() <= 0.5 + 1e-3  # PNG quantisation (float32 vs float64 at .5)
    for other in (0.9, 0.99):  # the check tells weights apart at 8 bits (here by 20 and 61 gray levels)
        assert np.abs(written - average(other)).max() > 1, other


def test_variance_matches_the_recursion_and_the_minimum_is_kept():
    rng = np.random.default_rng(0)
    frames = [torch.from_numpy(rng.random((1, 1, 3, 3))) for _ in range(30)]
    rule = VarianceStop(alpha=0.25, patience=1000, device=CPU)  # tracking starts at ceil(1/0.25) = 4
    feed(rule, frames)
    mean, var, best = frames[0].numpy().copy(), 0.0, (math.inf, -1)
    for t, f in enumerate(frames[1:], start=1):
        delta = f.numpy() - mean
        mean = np.clip(mean + 0.25 * delta, 0, 1)
        var = 0.75 * (var + 0.25 * float((delta ** 2).sum()))
        if t >= 4 and var < best[0]:
            best = (var, t)
    assert rule.variance.item() == pytest.approx(var, rel=1e-12)
    t_star, x_star = rule.result()
    assert t_star == best[1] and torch.equal(x_star, frames[best[1]])
    assert rule.fired() is None  # patience 1000 is never reached in 30 frames


def test_the_rule_fires_when_the_outputs_start_to_wander():
    # A fit that settles (changes shrink) and then chases noise (changes grow): the variance has a minimum near
    # the turn, and the rule fires `patience` iterations after it.
    rng = np.random.default_rng(1)
    target = rng.random((1, 1, 8, 8))
    frames, x = [], np.zeros_like(target)
    for t in range(400):
        step = 0.5 * 0.97 ** t if t < 150 else 0.002 * (t - 149)  # settle, then wander ever more
        x = np.clip(x + step * (target - x) + step * rng.standard_normal(target.shape) * (t >= 150), 0, 1)
        frames.append(torch.from_numpy(x.copy()))
    rule = VarianceStop(alpha=0.1, patience=50, device=CPU)
    feed(rule, frames)
    t_star, _ = rule.result()
    assert 120 <= t_star <= 170, t_star
    assert rule.fired() == t_star + 50


def test_the_rule_does_not_fire_while_the_outputs_keep_settling():
    rng = np.random.default_rng(2)
    target = rng.random((1, 1, 8, 8))
    frames, x = [], np.zeros_like(target)
    for t in range(400):
        x = x + 0.3 * 0.98 ** t * (target - x)
        frames.append(torch.from_numpy(x.copy()))
    rule = VarianceStop(alpha=0.1, patience=50, device=CPU)
    feed(rule, frames)
    assert rule.fired() is None and rule.result()[0] == 399  # every iteration set a new minimum


# ------------------------------------------------------------------------------------------ in a real fit
def _tiny(img, mask, out, **params):
    from dip.data.presets import resolve
    from dip.engine.fit import Fit, FitRequest

    tiny = {"n_down": [8, 8, 8], "n_up": [8, 8, 8], "n_skip": [2, 2, 2], "iterations": 40, "eval_every": 10,
            "lr": 0.01, "es_patience": 5, **params}
    return Fit(FitRequest(image=img, mask=mask, gt=img, out=out, preset="table1", params=resolve("table1", tiny),
                          threads=1), progress=False)


def test_fit_writes_ema_and_early_stop_images_scored_like_the_claim(tmp_path, img, mask):
    from skimage.metrics import peak_signal_noise_ratio

    m = _tiny(img, mask, tmp_path / "out").run()
    gt = np.asarray(Image.open(img))
    for name, key in (("output.png", "psnr"), ("output_ema.png", "psnr_ema"), ("output_es.png", "psnr_es")):
        written = np.asarray(Image.open(tmp_path / "out" / name))
        assert m[key] == pytest.approx(peak_signal_noise_ratio(gt, written, data_range=255), abs=1e-9), name
    assert 10 <= m["es_iter"] < 40 and m["psnr_best"] >= max(m["psnr"], m["psnr_es"] - 1)
    assert m["psnr_best"] >= m["psnr"]


def test_resume_keeps_averaging_and_stopping_bit_for_bit(tmp_path, img, mask):
    ref = _tiny(img, mask, tmp_path / "ref").run()
    first = _tiny(img, mask, tmp_path / "out")
    for it in range(23):
        first.iterate(it)
    first.save(23, 0.0)
    first.close()
    resumed = _tiny(img, mask, tmp_path / "out").run()
    assert resumed["resumed_from"] == 23
    for name in ("output.png", "output_ema.png", "output_es.png", "curve.csv"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    for key in ("psnr", "psnr_ema", "psnr_es", "es_iter", "es_fired_at", "psnr_best"):
        assert resumed[key] == ref[key], key


def test_inpaint_stop_auto_writes_the_rules_output_and_stops_early(tmp_path, img, mask):
    out, work = tmp_path / "auto.png", tmp_path / "work"
    r = dip("inpaint", img, mask, "-o", out, "--preset", "table1", "--stop", "auto", "--iterations", "400",
            "--threads", "1", *TINY[:6], "--eval-every", "10", "--lr", "0.01", "--set", "es_patience=20", "--no-progress",
            "--no-keep-known", "--mask-convention", "white-known", "--holdout", "0")  # ES-EMV: without held-out pixels
    assert r.returncode == 0, r.stderr
    assert "stop rule fired at" in r.stderr  # the progress line says so
    assert "where the stopping rule fired at" in r.stdout
    fired = int(r.stdout.split("fired at ")[1].split()[0].rstrip(")"))
    assert fired < 390  # it really stopped before the end
    # the same fit to the end, keeping its files: the rule's output is the same image
    dip("fit", "--image", img, "--mask", mask, "--preset", "table1", "--out", work, "--iterations", "400",
        "--threads", "1", *TINY[:6], "--eval-every", "10", "--lr", "0.01", "--set", "es_patience=20")
    m = json.loads((work / "metrics.json").read_text())
    assert m["es_fired_at"] == fired
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(work / "output_es.png")))


def test_inpaint_average_writes_the_output_average(tmp_path, img, mask):
    out, work = tmp_path / "avg.png", tmp_path / "work"
    args = ["--iterations", "30", "--threads", "1", *TINY[:6]]
    assert dip("inpaint", img, mask, "-o", out, "--average", "--no-keep-known", "--preset", "fig7_text",
               "--mask-convention", "white-known", *args, "--holdout", "0").returncode == 0
    assert dip("fit", "--image", img, "--mask", mask, "--preset", "fig7_text", "--out", work, *args).returncode == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(work / "output_ema.png")))


def test_the_rules_output_is_the_unperturbed_estimate_at_its_iteration(tmp_path, img, mask):
    # output_es.png is f_θ(z) with θ the parameters of iteration t*, not the perturbed training output x_{t*}:
    # rebuild θ_{t*} from a checkpoint of a second run saved at t* and compare the estimates exactly.
    ref = _tiny(img, mask, tmp_path / "ref", reg_noise_std=0.05)
    m = ref.run()
    t_star = m["es_iter"]
    assert 10 <= t_star < 40
    second = _tiny(img, mask, tmp_path / "out", reg_noise_std=0.05)
    for it in range(t_star):
        second.iterate(it)
    second.save(t_star, 0.0)
    second.close()
    rebuilt = _tiny(img, mask, tmp_path / "out", reg_noise_std=0.05)
    rebuilt.resume()
    assert rebuilt.start == t_star
    assert np.array_equal(rebuilt.estimate(), ref.images["output_es.png"])
    assert not np.array_equal(ref.images["output.png"], ref.images["output_es.png"])  # t* is not the end


def test_computing_the_rules_output_leaves_the_network_as_it_was(img, mask, tmp_path):
    fit = _tiny(img, mask, tmp_path / "out")
    for it in range(20):
        fit.iterate(it)
    est = fit.estimate()  # (a training-mode forward moves the BatchNorm running statistics: snapshot after it)
    before = {k: v.clone() for k, v in fit.net.state_dict().items()}
    assert stopping_estimate(fit) is not None
    assert all(torch.equal(before[k], v) for k, v in fit.net.state_dict().items())
    assert np.array_equal(fit.estimate(), est)
    fit.close()
