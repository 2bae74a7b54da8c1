"""dip.report.stats against numbers computed another way: Welch by hand, one-sample t by hand, textbook cases."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student_t

from conftest import checkout_env, make_image
from dip.report import stats


def long_table(samples: dict[str, tuple[list[float], list[float]]], task: str = "table1") -> pd.DataFrame:
    """image -> (A values, B values) as the long format compare() reads."""
    rows = [{"task": task, "image": image, "side": side, "psnr": v}
            for image, (a, b) in samples.items() for side, values in (("A", a), ("B", b)) for v in values]
    return pd.DataFrame(rows)


def shifted(images: int, seeds: int, shift: float, sd: float = 0.3, seed: int = 0) -> pd.DataFrame:
    """Random A/B samples per image; A = B's distribution + shift (image means differ by a few dB)."""
    rng = np.random.default_rng(seed)
    return long_table({f"im{i}": (list(30 + i + shift + sd * rng.standard_normal(seeds)),
                                  list(30 + i + sd * rng.standard_normal(seeds))) for i in range(images)})


def test_welch_interval_matches_a_hand_computed_satterthwaite_df():
    a, b = [31.0, 32.5, 30.2, 31.9, 33.1], [29.0, 29.4, 28.7, 30.2]
    row = stats.compare(long_table({"x": (a, b)})).iloc[0]
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = student_t.ppf(0.975, df) * math.sqrt(va + vb)
    delta = np.mean(a) - np.mean(b)
    assert (row.n_a, row.n_b) == (5, 4)
    assert row.mean_a == pytest.approx(np.mean(a)) and row.std_b == pytest.approx(np.std(b, ddof=1))
    assert row.delta == pytest.approx(delta)
    assert (row.ci_low, row.ci_high) == pytest.approx((delta - half, delta + half))
    assert row.verdict == "higher"  # A is clearly above B: the sign is mean(A) - mean(B)


def test_identical_samples_give_zero_and_indistinguishable():
    v = [30.1, 30.6, 29.8, 30.3]
    row = stats.compare(long_table({"x": (v, list(v))})).iloc[0]
    assert row.delta == 0 and row.ci_low < 0 < row.ci_high and row.verdict == "indistinguishable"


def test_bit_identical_runs_give_a_point_interval():
    row = stats.compare(long_table({"x": ([30.0, 30.0], [30.0, 30.0])})).iloc[0]
    assert (row.delta, row.ci_low, row.ci_high, row.verdict) == (0, 0, 0, "indistinguishable")


def test_a_clear_shift_is_higher_or_lower():
    up = stats.compare(shifted(3, 6, +2.0))
    down = stats.compare(shifted(3, 6, -2.0))
    assert list(up.verdict) == ["higher"] * 3 and list(down.verdict) == ["lower"] * 3
    assert (up.ci_low > 0).all() and (down.ci_high < 0).all()


def test_one_seed_on_a_side_is_too_few():
    table = stats.compare(long_table({"x": ([30.0], [29.0, 29.5, 30.1]), "y": ([], [29.0, 29.2])}))
    x, y = table.iloc[0], table.iloc[1]
    assert x.verdict == y.verdict == "too few seeds"
    assert math.isnan(x.std_a) and math.isnan(x.ci_low) and math.isnan(x.ci_high)
    assert x.delta == pytest.approx(30.0 - np.mean([29.0, 29.5, 30.1]))  # the difference of means still exists
    assert y.n_a == 0 and math.isnan(y.delta)


def test_overall_is_a_one_sample_t_interval_on_the_per_image_deltas():
    table = stats.compare(shifted(5, 4, 0.5))
    d = table.delta.to_numpy()
    half = student_t.ppf(0.975, len(d) - 1) * np.std(d, ddof=1) / math.sqrt(len(d))
    row = stats.overall(table).iloc[0]
    assert row.groups == 5 and row.delta == pytest.approx(d.mean())
    assert (row.ci_low, row.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))


def test_equivalence_holds_for_a_tiny_shift_with_many_seeds():
    table = stats.compare(shifted(6, 40, 0.01, sd=0.3))
    row = stats.equivalence(table, margin=0.2).iloc[0]
    d = table.delta.to_numpy()
    half = student_t.ppf(0.95, len(d) - 1) * np.std(d, ddof=1) / math.sqrt(len(d))  # the 90% interval
    assert (row.low, row.high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert row.equivalent and row.verdict == "equivalent" and row.p_tost < 0.05


def test_equivalence_fails_for_a_shift_the_size_of_the_margin():
    row = stats.equivalence(stats.compare(shifted(6, 40, 0.2, sd=0.3)), margin=0.2).iloc[0]
    assert not row.equivalent and row.verdict == "not shown equivalent" and row.p_tost > 0.05


def test_equivalence_needs_enough_images_and_seeds():
    few_seeds = stats.equivalence(stats.compare(shifted(6, 5, 0.0)), margin=0.2).iloc[0]
    few_images = stats.equivalence(stats.compare(shifted(3, 10, 0.0)), margin=0.2).iloc[0]
    for row in (few_seeds, few_images):
        assert not row.equivalent and row.verdict.startswith("too few") and math.isnan(row.low)
    assert stats.equivalence(stats.compare(shifted(4, 6, 0.0)), margin=5.0).iloc[0].equivalent


def test_bad_input_names_the_column():
    with pytest.raises(ValueError, match="'side' holds \\['C'\\]"):
        stats.compare(pd.DataFrame({"task": ["t"], "image": ["x"], "side": ["C"], "psnr": [30.0]}))
    with pytest.raises(ValueError, match="no column psnr"):
        stats.compare(pd.DataFrame({"task": ["t"], "image": ["x"], "side": ["A"]}))


def test_csv_has_the_fixed_column_order(tmp_path):
    table = stats.compare(shifted(2, 3, 1.0)[lambda f: f.columns[::-1]])  # column order of the input: irrelevant
    path = stats.write_csv(table, tmp_path / "parity.csv")
    header = path.read_text().splitlines()[0]
    assert header == "task,image,n_a,n_b,mean_a,mean_b,std_a,std_b,delta,ci_low,ci_high,verdict"
    back = pd.read_csv(path)
    assert list(back.image) == ["im0", "im1"] and back.delta.to_numpy() == pytest.approx(table.delta.to_numpy())


def run_parity(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.parity", *args], capture_output=True, text=True,
                          timeout=600, env=checkout_env())


def test_parity_study_writes_the_tables_and_reuses_its_fits(tmp_path):
    for i, name in enumerate(("house", "boat")):  # a synthetic mirror: no third-party image needed
        (tmp_path / "data" / "table1").mkdir(parents=True, exist_ok=True)
        make_image(tmp_path / "data" / "table1" / f"{name}.png", size=(64, 64), seed=i)
    tiny = ["--set", "iterations=10", "--set", "eval_every=5", "--set", "n_down=[8,8,8]", "--set", "n_up=[8,8,8]",
            "--set", "n_skip=[2,2,2]"]
    common = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--images", "house", "boat",
              "--seeds", "0", "1", "--modes", "fp32-cl", "--threads", "1", "--jobs", "2"]
    first = run_parity(*common, *tiny)
    assert first.returncode == 0, first.stderr
    assert "parity: 8 of 8 fits to run" in first.stderr
    table = pd.read_csv(tmp_path / "out" / "parity.csv")
    assert list(table.columns) == ["mode", "task", "image", *stats.STAT_COLUMNS]
    assert sorted(table.image) == ["boat", "house"] and set(table.n_a) == set(table.n_b) == {2}
    verdict = pd.read_csv(tmp_path / "out" / "eligibility.csv").iloc[0]
    assert verdict["mode"] == "fp32-cl" and not verdict.eligible and verdict.verdict.startswith("too few")
    assert "| fp32-cl | house | 2/2 |" in first.stdout

    again = run_parity(*common, *tiny)
    assert again.returncode == 0 and "parity: 0 of 8 fits to run" in again.stderr
    assert pd.read_csv(tmp_path / "out" / "parity.csv").equals(table)

    other = run_parity(*common, *tiny[:-2], "--set", "n_skip=[4,4,4]")  # same folder, other settings: refused
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1
    assert "made with other settings" in other.stderr and "metrics.json" in other.stderr


def test_parity_refuses_cuda_only_modes_on_a_cpu(tmp_path):
    r = run_parity("--device", "cpu", "--modes", "tf32-graph", "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert r.stderr.strip() == "parity: --modes tf32-graph exist only on CUDA (give --device cuda)"
    assert not (tmp_path / "out").exists()
