"""benchmarks/stopping_rules.py, issue 22's study: its replay of the validation rule is the engine's rule, its
records hold what the rules need, and its summary is dip.report.stats' comparison over images."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT

STUDY = ROOT / "docs" / "stopping-study"


@pytest.fixture
def sr(monkeypatch):
    """benchmarks.stopping_rules, importable from the checkout (benchmarks/ is not installed)."""
    monkeypatch.syspath_prepend(str(ROOT))
    import benchmarks.stopping_rules as sr

    return sr


@pytest.mark.parametrize("watch", ["estimate", "average"])
def test_the_replayed_rule_fires_where_the_engines_rule_fires(tmp_path, img, mask, sr, watch):
    # A real fit with held-out pixels run to the end (no --stop): replaying the rule on its curve's psnr_val gives
    # the engine's firing iteration and the best evaluation before it.
    from dip.data.presets import resolve
    from dip.engine.fit import Fit, FitRequest

    tiny = {"n_down": [8, 8, 8], "n_up": [8, 8, 8], "n_skip": [2, 2, 2], "iterations": 300, "eval_every": 5,
            "lr": 0.1, "ema_weight": 0.9}
    fit = Fit(FitRequest(image=img, mask=mask, gt=img, out=tmp_path / "out", preset="table1",
                         params=resolve("table1", tiny), threads=1, holdout=0.2, holdout_patience=15,
                         holdout_watch=watch), progress=False)
    m = fit.run()
    curve = pd.read_csv(tmp_path / "out" / "curve.csv")
    fired, best = sr.stop_on(curve.rename(columns={"psnr_val": "val"}), "val", 15)
    assert fired == m["val_fired_at"] and fired is not None  # (this tiny fit on a random image does fire)
    assert curve["psnr_val"].iloc[best] == pytest.approx(curve["psnr_val"][curve["iteration"] <= fired].max())
    # (the best up to the firing: without --stop the engine goes on looking after it)


def test_a_rule_that_never_fires_falls_back_to_the_end(sr):
    evals = pd.DataFrame({"iteration": [0, 10, 20, 30], "psnr": [20.0, 21.0, 22.0, 23.0],
                          "val": [18.0, 19.0, 20.0, 21.0], "ema_psnr": [19.0, 21.5, 22.5, 23.5],
                          "ema_val": [17.0, 19.5, 20.5, 21.5]})
    m = {"psnr": 23.0, "psnr_ema": 23.5, "psnr_es": 22.8, "es_fired_at": None, "psnr_best": 23.0,
         "iterations": 30, "seed": 0, "task": "table1", "image": "house"}
    got = {r["rule"]: (r["psnr"], r["stopped"]) for r in sr.rules(m, evals, patience=15)}
    assert got == {"final": (23.0, None), "ema": (23.5, None), "es": (23.0, None), "val": (23.0, None),
                   "val_ema": (23.5, None), "val_ema_end": (23.5, None), "default": (23.5, None),
                   "pick": (23.5, None)}
    falling = evals.assign(val=[18.0, 21.0, 20.0, 19.0], ema_val=[17.0, 21.0, 20.0, 19.0])
    got = {r["rule"]: (r["psnr"], r["stopped"]) for r in sr.rules(m, falling, patience=15)}
    assert got["val"] == (21.0, 30) and got["val_ema"] == (21.5, 30)  # fired at 30: the value at 10
    assert got["val_ema_end"] == (21.5, None)  # the same image, without stopping
    assert got["default"] == (21.5, None)  # its held-out PSNR (21.0) beats the final iterate's (19.0)
    lagging = evals.assign(ema_val=[17.0, 18.0, 19.0, 20.0])  # the average still behind the iterate (21.0) at the end
    got = {r["rule"]: (r["psnr"], r["stopped"]) for r in sr.rules(m, lagging, patience=15)}
    assert got["val_ema_end"] == (23.5, None) and got["default"] == (23.0, None)
    assert got["pick"] == (23.0, None)  # at the end the iterate's held-out PSNR is the better one
    rising_again = falling.assign(ema_val=[17.0, 21.0, 20.0, 19.0, 22.0][:4])
    rising_again.loc[len(rising_again)] = [40, 24.0, 19.0, 24.5, 22.0]
    got = {r["rule"]: (r["psnr"], r["stopped"]) for r in sr.rules({**m, "iterations": 40}, rising_again, 15)}
    assert got["val_ema"] == (21.5, 30) and got["val_ema_end"] == (24.5, None)  # the fit went on and did better


def test_the_summary_is_the_comparison_over_images_of_dip_stats(sr):
    from dip.report.stats import compare, overall

    rng = np.random.default_rng(0)
    rows = [{"rule": "final", "image": im, "seed": s, "psnr": 30 + rng.normal(), "oracle": 31 + rng.normal(),
             "final": 0.0, "stopped": None, "iterations": 100} for im in "abcd" for s in range(3)]
    df = pd.DataFrame(rows)
    df["final"] = df["psnr"]
    got = sr.summary(df).iloc[0]
    long = pd.concat([df.assign(side="A"), df.assign(side="B", psnr=df["oracle"])])
    want = overall(compare(long, keys=["image"], side="side", value="psnr")).iloc[0]
    assert (got["gap"], got["low"], got["high"]) == pytest.approx((want["delta"], want["ci_low"], want["ci_high"]))
    assert got["images"] == 4 and got["fits"] == 12


@pytest.mark.parametrize("regime", ["quick", "noisy"])
def test_the_committed_study_has_every_fit_with_the_columns_the_rules_need(regime):
    folder = STUDY / regime
    fits = sorted(folder.glob("*/seed*/metrics.json"))
    assert len(fits) == 36 and len({f.parent.parent.name for f in fits}) == 12
    for f in fits:
        m = json.loads(f.read_text())
        assert m["regime"] == regime and m["holdout"] == 0.05 and m["psnr_best"] >= m["psnr"] - 1e-9
        evals = pd.read_csv(f.with_name("evals.csv"))
        assert list(evals.columns) == ["iteration", "psnr", "val", "ema_psnr", "ema_val"]
        assert evals["iteration"].iloc[-1] == m["iterations"] and evals["psnr"].iloc[-1] == pytest.approx(m["psnr"],
                                                                                                          abs=1e-4)
