"""dip inpaint's held-out validation pixels (dip.engine.holdout) and the choice they make (dip.inpaint.choice): the mask, the rule
on synthetic streams, that the pixels never reach the loss, and resuming after SIGKILL bit for bit."""

from __future__ import annotations

import signal

import numpy as np
import pytest
from PIL import Image

from conftest import TINY, Watched, dip, make_image
from dip.engine.holdout import Validation, holdout_mask
from dip.inpaint.choice import blend_weight, choose


def strokes(h: int = 64, w: int = 64) -> np.ndarray:
    """A known mask with thin missing strokes (a few rows and a column)."""
    known = np.ones((h, w), dtype=bool)
    known[10:12, 5:40] = known[30:33, 20:60] = known[5:50, 50:52] = False
    return known


def test_holdout_is_a_seeded_subset_of_the_known_pixels_in_the_damages_shapes():
    known = strokes()
    held = holdout_mask(known, 0.05, seed=0)
    assert not (held & ~known).any()  # only known pixels are held out
    assert 0.04 <= held.sum() / known.sum() <= 0.08
    assert np.array_equal(held, holdout_mask(known, 0.05, seed=0))  # seeded
    assert not np.array_equal(held, holdout_mask(known, 0.05, seed=1))
    # copies of thin strokes, not scattered pixels: most held-out pixels have a held-out 4-neighbour
    nb = np.zeros_like(held)
    nb[1:] |= held[:-1]
    nb[:-1] |= held[1:]
    nb[:, 1:] |= held[:, :-1]
    nb[:, :-1] |= held[:, 1:]
    assert (held & nb).sum() >= 0.9 * held.sum()


def test_the_copies_lie_beside_the_damage():
    known = np.ones((200, 200), dtype=bool)
    known[100:104, 60:90] = False  # one 4x30 scratch: copies go 5-7 px above or below, or 31-33 px aside
    held = holdout_mask(known, 0.001, seed=0)  # 40 pixels: one copy
    ys, xs = np.nonzero(held)
    assert held.sum() > 0
    assert ys.min() >= 100 - 7 and ys.max() < 104 + 7 and xs.min() >= 60 - 33 and xs.max() < 90 + 33


def test_a_hole_larger_than_the_budget_is_cut_to_it():
    known = np.ones((100, 100), dtype=bool)
    known[20:80, 20:80] = False  # one hole of 3600 pixels; 5% of the 6400 known is 320
    held = holdout_mask(known, 0.05, seed=3)
    assert 0.03 <= held.sum() / known.sum() <= 0.1 and not (held & ~known).any()


def feed(rule: Validation, image: np.ndarray, values: list[float]) -> None:
    """Evaluations every 10 iterations whose estimate is ``image`` off by a constant giving each PSNR."""
    for i, v in enumerate(values):
        rule.evaluate(10 * i, np.clip(image + 10 ** (-v / 20), 0, 1))


def test_validation_rule_fires_after_the_patience_and_keeps_the_best_estimate():
    image = np.full((1, 8, 8), 0.5)
    held = np.zeros((8, 8), dtype=bool)
    held[2:4, 2:6] = True
    rule = Validation(image, held, patience=30)
    feed(rule, image, [20, 25, 30, 29, 28, 27, 26])
    assert rule.best[1] == 20 and rule.best[0] == pytest.approx(30, abs=1e-6)
    assert rule.fired() == 50  # 30 iterations after the best without a better value
    assert np.allclose(rule.best_estimate, image + 10 ** (-30 / 20))


def test_validation_rule_does_not_fire_while_the_held_out_psnr_keeps_rising():
    image = np.full((1, 8, 8), 0.5)
    held = np.ones((8, 8), dtype=bool)
    rule = Validation(image, held, patience=30)
    feed(rule, image, [20, 21, 21.5, 21.4, 22, 23, 23.1, 23.2])  # one dip, shorter than the patience
    assert rule.fired() is None and rule.best[1] == 70


def test_blend_weight_is_the_least_squares_weight_in_0_1():
    rng = np.random.default_rng(0)
    y = rng.random(100)
    d, c = y + 0.01 * rng.standard_normal(100), y + 0.3 * rng.standard_normal(100)
    assert blend_weight(d, c, y) > 0.95
    assert blend_weight(c, d, y) < 0.05
    assert blend_weight(y + 0.1, y - 0.1, y) == pytest.approx(0.5)
    assert blend_weight(y, y, y) == 1.0


def test_choice_picks_the_classical_fill_when_dip_is_bad_and_dip_when_it_is_good():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:48] / 48
    image = (0.5 + 0.3 * np.sin(4 * x) * np.cos(3 * y))[None]
    known = strokes(48, 48)
    held = holdout_mask(known, 0.05, seed=0)
    train = known & ~held
    noisy = np.clip(image + 0.2 * rng.standard_normal(image.shape), 0, 1)
    bad = choose(image, train, held, noisy, "output.png")
    assert bad.weight < 0.2 and bad.scores["blend"] >= max(bad.scores["dip"], bad.scores["classical"]) - 1e-9
    good = choose(image, train, held, image.copy(), "output_val.png")
    assert good.weight == 1.0 and good.candidate == "output_val.png" and good.what == "DIP"


def test_watching_the_average_the_final_iterate_stands_for_dip_where_it_predicts_better():
    # At a short budget the average still carries early outputs: the candidate is then the final iterate, picked
    # on the held-out pixels; where the average predicts better it stays (and the rule's output when it fired).
    from types import SimpleNamespace

    from dip.inpaint.choice import candidate

    rng = np.random.default_rng(0)
    image = rng.random((1, 32, 32))
    held = strokes(32, 32) & (rng.random((32, 32)) < 0.3)
    good, bad = image.copy(), np.clip(image + 0.2 * rng.standard_normal(image.shape), 0, 1)

    def fit(final, average, fired=None):
        rule = SimpleNamespace(watch="average", held=held, fired=lambda: fired)
        return SimpleNamespace(validation=rule, inputs=SimpleNamespace(image=image),
                               images={"output.png": final, "output_ema.png": average, "output_val.png": average})

    assert candidate(fit(good, bad)) == "output.png"
    assert candidate(fit(bad, good)) == "output_ema.png"
    assert candidate(fit(bad, good, fired=40)) == "output_val.png"
    assert candidate(fit(good, bad, fired=40)) == "output.png"
    estimate = SimpleNamespace(validation=SimpleNamespace(watch="estimate", held=held, fired=lambda: None),
                               inputs=SimpleNamespace(image=image), images={"output.png": bad})
    assert candidate(estimate) == "output.png"  # --no-average: the final iterate, nothing to pick from


# ------------------------------------------------------------------------------------------ in a real fit
def _fit(img, mask, out, holdout=0.1, watch="estimate", **params):
    from dip.data.presets import resolve
    from dip.engine.fit import Fit, FitRequest

    tiny = {"n_down": [8, 8, 8], "n_up": [8, 8, 8], "n_skip": [2, 2, 2], "iterations": 30, "eval_every": 10,
            "lr": 0.01, **params}
    return Fit(FitRequest(image=img, mask=mask, out=out, preset="table1", params=resolve("table1", tiny),
                          threads=1, holdout=holdout, holdout_patience=20, holdout_watch=watch), progress=False)


def test_the_held_out_pixels_never_reach_the_loss(tmp_path):
    # Change only the held-out pixels of the image: the training curve (loss, masked PSNR) and the final
    # output are bit-identical; only psnr_val differs.
    img = make_image(tmp_path / "img.png", (32, 32))
    known = strokes(32, 32)
    Image.fromarray(np.where(known, 255, 0).astype(np.uint8)).save(tmp_path / "mask.png")
    held = holdout_mask(known, 0.1, seed=0)
    a = np.asarray(Image.open(img)).copy()
    a[held] = 255 - a[held]
    Image.fromarray(a).save(tmp_path / "img2.png")
    one = _fit(img, tmp_path / "mask.png", tmp_path / "one")
    assert np.array_equal(one.validation.held, held)
    m1, m2 = one.run(), _fit(tmp_path / "img2.png", tmp_path / "mask.png", tmp_path / "two").run()
    c1, c2 = (np.genfromtxt(tmp_path / d / "curve.csv", delimiter=",", names=True) for d in ("one", "two"))
    for col in ("iteration", "loss", "psnr_masked"):
        assert np.array_equal(c1[col], c2[col], equal_nan=True), col  # (the final row has no loss)
    assert not np.array_equal(c1["psnr_val"], c2["psnr_val"])
    assert (tmp_path / "one" / "output.png").read_bytes() == (tmp_path / "two" / "output.png").read_bytes()
    assert m1["holdout_pixels"] == int(held.sum()) and m1["psnr_val"] != m2["psnr_val"]


def test_the_validation_output_is_the_estimate_of_its_best_evaluation(tmp_path, img, mask):
    fit = _fit(img, mask, tmp_path / "out", iterations=60)
    m = fit.run()
    curve = np.genfromtxt(tmp_path / "out" / "curve.csv", delimiter=",", names=True)
    best = int(curve["iteration"][np.argmax(curve["psnr_val"])])
    assert m["val_iter"] == best
    rebuilt = _fit(img, mask, tmp_path / "again", iterations=60)
    for it in range(best):
        rebuilt.iterate(it)
    assert np.array_equal(rebuilt.estimate(), fit.images["output_val.png"])
    rebuilt.close()


def test_watching_the_average_keeps_the_average_of_its_best_evaluation(tmp_path, img, mask):
    # holdout_watch="average" (dip inpaint's --average): psnr_val scores the output average a_t, and
    # output_val.png is a_t at the best of them, the same array a second fit rebuilds by running to that
    # iteration (a_t at evaluation t holds the outputs x_0..x_t: iteration t's own, before its Adam step).
    from dip.core.quality import psnr_known

    fit = _fit(img, mask, tmp_path / "out", watch="average", iterations=60)
    m = fit.run()
    curve = np.genfromtxt(tmp_path / "out" / "curve.csv", delimiter=",", names=True)
    best = int(curve["iteration"][np.argmax(curve["psnr_val"])])
    assert m["val_iter"] == best and m["val_watch"] == "average"
    rebuilt = _fit(img, mask, tmp_path / "again", watch="average", iterations=60)
    for it in range(min(best + 1, 60)):
        rebuilt.iterate(it)
    average = rebuilt.average.average[0].numpy()
    assert np.array_equal(average, fit.images["output_val.png"])
    assert psnr_known(rebuilt.inputs.image, average, rebuilt.validation.held) == pytest.approx(m["psnr_val"])
    assert not np.array_equal(rebuilt.estimate(), fit.images["output_val.png"])  # the average, not f(z)
    rebuilt.close()


ARGS = ["--preset", "table1", "--threads", "1", "--no-progress", *TINY, "--holdout", "0.1", "--set", "lr=0.01",
        "--mask-convention", "white-known"]  # the masks here: 255 = known


def test_inpaint_with_held_out_pixels_resumes_after_sigkill_bit_for_bit(tmp_path):
    img = make_image(tmp_path / "img.png", (48, 48))
    known = strokes(48, 48)
    Image.fromarray(np.where(known, 255, 0).astype(np.uint8)).save(tmp_path / "mask.png")
    ref, out = tmp_path / "ref.png", tmp_path / "out.png"
    run = ["inpaint", img, tmp_path / "mask.png", *ARGS, "--iterations", "600", "--checkpoint-every", "10"]
    r = dip(*run, "-o", ref)
    assert r.returncode == 0, r.stderr
    assert "held-out known pixels" in r.stdout
    p = Watched(*run, "-o", out)
    try:
        p.wait_for(r"\[dip\] it (\d+)/600 ", when=lambda m: int(m.group(1)) > 30)
    finally:
        p.proc.send_signal(signal.SIGKILL)
        p.proc.wait()
    assert p.proc.returncode == -signal.SIGKILL and not out.exists()
    r2 = dip(*run, "-o", out)
    assert r2.returncode == 0, r2.stderr
    assert "resumed from" in r2.stderr
    assert out.read_bytes() == ref.read_bytes() and r2.stdout.split(": ", 1)[1] == r.stdout.split(": ", 1)[1]


def test_inpaint_stop_auto_with_held_out_pixels_ends_when_the_validation_rule_fires(tmp_path, img, mask):
    r = dip("inpaint", img, mask, "-o", tmp_path / "out.png", *ARGS, "--iterations", "2000", "--stop", "auto",
            "--holdout-patience", "10")
    assert r.returncode == 0, r.stderr
    fired = int(r.stderr.split("the stopping rule fired at iteration ")[1].split()[0])
    assert fired < 1990 and "best held-out PSNR" in r.stderr
    assert "held-out known pixels" in r.stdout  # and the choice says why
