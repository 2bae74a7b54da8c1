"""`dip report`, `dip compare` and `dip figure7` on synthetic fit directories (no fitting: seconds)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from dip import cli
from dip.errors import DipError
from dip.report import aggregate as report
from dip.report import figure7 as figure
from dip.report import gate as compare_cmd
from dip.report.results import METRICS_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "config.yaml"
CFG = yaml.safe_load(CONFIG.read_text())
PAPER = CFG["paper"]["table1_psnr"]
IMAGES = CFG["tasks"]["table1"]["images"]
CURVE_ITERS = (0, 10, 20)


def make_fit(root: Path, task: str, image: str, seed: int, psnr: float, profile: str = "quick",
             size: int = 16, crop: dict | None = None, rgb: bool = False, observers: bool = True) -> Path:
    """A fit directory that follows docs/architecture.md: metrics.json, curve.csv, output.png, observed.png."""
    d = root / "fits" / task / image / f"seed{seed}"
    d.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    shape = (size, size, 3) if rgb else (size, size)
    out = rng.integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(out).save(d / "output.png")
    Image.fromarray(np.where(rng.random(shape) < 0.5, 0, out).astype(np.uint8)).save(d / "observed.png")
    m = {
        "psnr": psnr, "ssim": 0.8, "psnr_best": psnr + 0.25, "psnr_best_iter": 10, "psnr_masked": psnr + 3,
        "iterations": 20, "seconds_per_iter": 0.5, "wall_seconds": 10.0, "backtracks": 0, "seed": seed,
        "device": "cpu", "precision": "fp32", "threads": 1, "torch": "2.13.0", "dip_version": "0.1.0",
        "preset": task, "params": {}, "height": size, "width": size, "channels": 3 if rgb else 1, "crop": crop,
        "inputs": {"image": {"path": f"data/raw/{task}/{image}.png", "sha256": f"sha-{image}"}, "mask": None,
                   "gt": None},
        "tags": {"profile": profile, "task": task, "image": image}, "resumed_from": None,
    }
    if observers:  # fits recorded before output averaging and early stopping existed have none of these
        m.update(psnr_ema=psnr - 0.5, psnr_es=psnr - 0.25, es_iter=12 + seed, es_fired_at=None)
    (d / "metrics.json").write_text(json.dumps(m))
    rows = ["iteration,loss,psnr_masked,psnr,ssim"]
    rows += [f"{it},{1.0 / (it + 1)},{psnr - 2 + it / 10},{psnr - 2 + it / 10},0.5" for it in CURVE_ITERS]
    (d / "curve.csv").write_text("\n".join(rows) + "\n")
    return d


def full_set(root: Path, profile: str, offsets: dict[str, float] | None = None, seeds=(0, 1)) -> list[Path]:
    """Every Table 1 image and kate, per seed: psnr = paper + offset -/+ 1 dB (mean = paper + offset)."""
    offsets = offsets or {}
    fits = [make_fit(root, "table1", im, s, PAPER[im] + offsets.get(im, 0.0) + (1.0 if s else -1.0), profile)
            for im in IMAGES for s in seeds]
    fits += [make_fit(root, "fig7_text", "kate", s, 30.0 + s, profile) for s in seeds]
    random.Random(0).shuffle(fits)  # the report must sort them itself
    return fits


def run_report(tmp_path: Path, profile: str, fits: list[Path]) -> Path:
    out = tmp_path / "results" / profile
    argv = ["--config", str(CONFIG), "--profile", profile, "--fits", *map(str, fits), "--out", str(out)]
    assert report.main(argv) == 0
    return out


def table(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "table1.csv").set_index("image")


def md_row(out: Path, image: str) -> list[str]:
    """The stripped cells of one image's row in table1.md."""
    line = next(line for line in (out / "table1.md").read_text().splitlines() if line.startswith(f"| {image} "))
    return [cell.strip() for cell in line.strip("|").split("|")]


# ------------------------------------------------------------------------------------------- dip report
def test_metrics_csv_one_sorted_row_per_fit(tmp_path):
    out = run_report(tmp_path, "quick", full_set(tmp_path, "quick"))
    m = pd.read_csv(out / "metrics.csv")
    assert list(m.columns) == METRICS_COLUMNS
    assert len(m) == 2 * len(IMAGES) + 2
    expected = [("table1", im, s) for im in IMAGES for s in (0, 1)]
    expected += [("fig7_text", "kate", 0), ("fig7_text", "kate", 1)]
    assert list(m[["task", "image", "seed"]].itertuples(index=False, name=None)) == expected
    row = m[(m["image"] == "house") & (m["seed"] == 1)].iloc[0]
    assert row["psnr"] == pytest.approx(PAPER["house"] + 1.0)
    assert row["psnr_best"] == pytest.approx(PAPER["house"] + 1.25)
    assert (row["profile"], row["preset"], row["device"]) == ("quick", "table1", "cpu")
    assert row["image_sha256"] == "sha-house"
    assert (row["height"], row["width"], row["threads"], row["iterations"]) == (16, 16, 1, 20)


def test_mean_and_std_over_two_seeds(tmp_path):
    fits = [make_fit(tmp_path, "table1", "barbara", 0, 30.0, "paper"),
            make_fit(tmp_path, "table1", "barbara", 1, 32.0, "paper")]
    out = run_report(tmp_path, "paper", fits)
    b = table(out).loc["barbara"]
    assert b["psnr_mean"] == pytest.approx(31.0)
    assert b["psnr_std"] == pytest.approx(math.sqrt(2), abs=1e-4)  # sample std (ddof=1) of 30 and 32
    assert b["n_seeds"] == 2
    assert b["delta_db"] == pytest.approx(31.0 - 32.22)
    assert b["psnr_best_oracle_mean"] == pytest.approx(31.25)
    assert md_row(out, "barbara")[:7] == ["barbara", "32.22", "28.14", "31.00 ± 1.41", "2", "-1.22", "off by -1.22 dB"]


def test_paper_profile_verdicts_and_average(tmp_path):
    out = run_report(tmp_path, "paper", full_set(tmp_path, "paper", {"barbara": 0.5, "boat": -2.0, "house": 1.0}))
    t = table(out)
    assert t.loc["barbara", "verdict"] == "match"
    assert t.loc["house", "verdict"] == "match"  # |Δ| = tolerance (1.0 dB) is still a match
    assert t.loc["boat", "verdict"] == "off by -2.00 dB"
    assert t.loc["boat", "delta_db"] == pytest.approx(-2.0)
    assert list(t.index) == IMAGES + ["Average"]
    paper_avg = sum(PAPER.values()) / len(PAPER)
    assert t.loc["Average", "paper_psnr"] == pytest.approx(paper_avg, abs=1e-4)
    assert t.loc["Average", "psnr_mean"] == pytest.approx(paper_avg + (0.5 - 2.0 + 1.0) / 11, abs=1e-4)
    assert t.loc["Average", "verdict"] == "match"
    md = (out / "table1.md").read_text()
    assert "NOT comparable" not in md
    assert "final iterate" in md and "oracle" in md and "fp32 on cpu" in md and "Seeds: 0, 1" in md
    assert md_row(out, "boat")[5:7] == ["-2.00", "off by -2.00 dB"]
    assert md_row(out, "Average")[1:7] == ["33.48", "31.19", "33.44 (-0.25)", "—", "-0.05", "match"]


def test_reduced_profile_is_marked_not_comparable(tmp_path):
    out = run_report(tmp_path, "quick", full_set(tmp_path, "quick", {"boat": -5.0}))
    t = table(out)
    assert set(t["verdict"]) == {"not comparable (profile quick)"}
    assert t["delta_db"].isna().all()  # no Δ against the paper for a reduced profile
    md = (out / "table1.md").read_text()
    sentence = md.split("\n\n")[1]  # first paragraph under the title
    assert "reduced profile `quick`" in sentence and "NOT comparable with the paper" in sentence
    assert CFG["profiles"]["quick"]["description"] in sentence  # names what was reduced
    assert md_row(out, "Average")[5:7] == ["—", "not comparable (profile quick)"]
    assert "\n\n| Image " in md  # the table is its own Markdown block


def test_final_ema_early_stop_and_oracle_side_by_side(tmp_path):
    # Per fit: final 30/32 (seeds 0/1), EMA final - 0.5, early stop final - 0.25 at iteration 12 + seed, oracle
    # final + 0.25. The table shows each mean ± std over seeds and, in the Average row, each one's gap to the oracle.
    fits = [make_fit(tmp_path, "table1", "barbara", s, p, "quick") for s, p in ((0, 30.0), (1, 32.0))]
    t = table(run_report(tmp_path, "quick", fits))
    b = t.loc["barbara"]
    assert (b["psnr_mean"], b["psnr_ema_mean"], b["psnr_es_mean"], b["psnr_best_oracle_mean"]) == pytest.approx(
        (31.0, 30.5, 30.75, 31.25))
    assert b["psnr_ema_std"] == pytest.approx(math.sqrt(2), abs=1e-4) and b["es_iter_mean"] == pytest.approx(12.5)
    avg = t.loc["Average"]
    assert (avg["psnr_gap_to_oracle"], avg["psnr_ema_gap_to_oracle"], avg["psnr_es_gap_to_oracle"]) == pytest.approx(
        (-0.25, -0.75, -0.5))
    row = md_row(tmp_path / "results" / "quick", "barbara")
    assert row[10:13] == ["30.50 ± 1.41", "30.75 ± 1.41 [12]", "31.25 ± 1.41"]
    assert md_row(tmp_path / "results" / "quick", "Average")[10:12] == ["30.50 (-0.75)", "30.75 (-0.50) [12]"]


def test_fits_recorded_before_ema_and_early_stopping_still_report(tmp_path):
    fits = [make_fit(tmp_path, "table1", "house", 0, 37.0, "paper", observers=False)]
    t = table(run_report(tmp_path, "paper", fits))
    assert t.loc["house", "psnr_mean"] == pytest.approx(37.0) and math.isnan(t.loc["house", "psnr_ema_mean"])
    assert md_row(tmp_path / "results" / "paper", "house")[10:12] == ["—", "—"]


def test_old_and_new_records_mixed_compare_each_outcome_on_the_fits_that_have_it(tmp_path):
    # house: seed 0 recorded before EMA/ES (final 37), seed 1 with them (final 39, EMA 38.5, oracle 39.25);
    # lena: an old record alone. EMA's gap to the oracle is taken fit by fit (-0.75), not mean EMA (1 fit) minus
    # mean oracle (2 fits), which would be +0.25; the cells say how many seeds / images they cover.
    fits = [make_fit(tmp_path, "table1", "house", 0, 37.0, "paper", observers=False),
            make_fit(tmp_path, "table1", "house", 1, 39.0, "paper"),
            make_fit(tmp_path, "table1", "lena", 0, 36.0, "paper", observers=False)]
    out = run_report(tmp_path, "paper", fits)
    t = table(out)
    h = t.loc["house"]
    assert (h["psnr_mean"], h["psnr_ema_mean"], h["psnr_ema_n"], h["psnr_best_oracle_n"]) == pytest.approx(
        (38.0, 38.5, 1, 2))
    assert h["psnr_ema_gap_to_oracle"] == pytest.approx(-0.75) and h["psnr_gap_to_oracle"] == pytest.approx(-0.25)
    assert t.loc["Average", "psnr_ema_n"] == 1 and t.loc["Average", "psnr_ema_gap_to_oracle"] == pytest.approx(-0.75)
    assert md_row(out, "house")[10:12] == ["38.50 (1 of 2 seeds)", "38.75 (1 of 2 seeds) [13]"]
    assert md_row(out, "Average")[10] == "38.50 (1 of 2 images) (-0.75)"


def test_incomplete_paper_set_averages_over_the_same_images(tmp_path):
    fits = [make_fit(tmp_path, "table1", "lena", 0, 36.0, "paper"), make_fit(tmp_path, "table1", "boat", 0, 30.0, "paper")]
    out = run_report(tmp_path, "paper", fits)
    t = table(out)
    assert t.loc["lena", "verdict"] == "match"
    assert t.loc["house", "verdict"] == "no fits" and t.loc["house", "n_seeds"] == 0
    # paper: (36.16 + 33.06) / 2 = 34.61; ours: 33.0 -> delta -1.61
    assert t.loc["Average", "paper_psnr"] == pytest.approx(34.61)
    assert t.loc["Average", "delta_db"] == pytest.approx(-1.61)
    assert t.loc["Average", "verdict"] == ("off by -1.61 dB (incomplete: 2 of 11 images, paper averaged over the "
                                           "same)")


def test_summary_json(tmp_path):
    out = run_report(tmp_path, "paper", full_set(tmp_path, "paper", {"barbara": 0.5}))
    s = json.loads((out / "summary.json").read_text())
    assert set(s) == {"profile", "n_fits", "table1_mean_psnr", "table1_paper_mean_psnr", "table1_mean_delta_vs_paper",
                      "table1", "fig7_text_psnr", "total_wall_seconds", "mean_seconds_per_iter",
                      "table1_mean_psnr_ema", "table1_mean_psnr_es", "table1_mean_psnr_oracle",
                      "table1_mean_classical_psnr", "table1_dip_minus_classical", "table1_dip_minus_classical_ci_low",
                      "table1_dip_minus_classical_ci_high"}
    assert s["table1_mean_classical_psnr"] is None  # no --baselines given
    assert s["profile"] == "paper" and s["n_fits"] == 24
    assert s["table1"]["barbara"] == pytest.approx(32.72) and list(s["table1"]) == IMAGES
    assert s["table1_mean_delta_vs_paper"] == pytest.approx(0.5 / 11, abs=1e-3)
    assert s["fig7_text_psnr"] == pytest.approx(30.5)
    assert s["total_wall_seconds"] == pytest.approx(240.0)
    assert s["mean_seconds_per_iter"] == pytest.approx(0.5)

    q_out = run_report(tmp_path / "q", "quick", full_set(tmp_path / "q", "quick"))
    q = json.loads((q_out / "summary.json").read_text())
    assert q["table1_mean_delta_vs_paper"] is None and q["profile"] == "quick"


def test_curves_csv_and_png(tmp_path):
    fits = full_set(tmp_path, "quick")
    out = run_report(tmp_path, "quick", fits)
    c = pd.read_csv(out / "curves.csv")
    assert list(c.columns) == ["task", "image", "seed", "iteration", "psnr", "psnr_masked", "loss", "profile"]
    assert set(c["profile"]) == {"quick"}  # every result file records its profile
    assert len(c) == len(fits) * len(CURVE_ITERS)
    k = c[(c["image"] == "kate") & (c["seed"] == 1)]
    assert list(k["iteration"]) == list(CURVE_ITERS) and list(k["psnr"]) == pytest.approx([29.0, 30.0, 31.0])
    assert c["task"].iloc[0] == "table1" and c["image"].iloc[0] == "barbara"
    png = (out / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = Image.open(out / "curves.png").size
    assert w > 800 and h > 600  # 12 panels, 4 per row
    out2 = run_report(tmp_path / "again", "quick", fits)
    assert (out2 / "curves.png").read_bytes() == png  # deterministic output
    assert not list(out.glob(".*.tmp"))  # no temporary file left behind


def test_mixing_profiles_is_refused_and_nothing_written(tmp_path, capsys):
    fits = [make_fit(tmp_path, "table1", "barbara", 0, 30.0, "quick"),
            make_fit(tmp_path, "table1", "boat", 0, 30.0, "ci")]
    out = tmp_path / "results" / "quick"
    argv = ["report", "--config", str(CONFIG), "--profile", "quick", "--fits", *map(str, fits), "--out", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "boat/seed0/metrics.json" in err and "mixing profiles" in err and "'ci'" in err
    assert not out.exists() or not any(out.iterdir())


def test_unknown_profile_and_missing_metrics_are_errors(tmp_path):
    fit = make_fit(tmp_path, "table1", "barbara", 0, 30.0, "quick")
    with pytest.raises(DipError, match="unknown profile 'nope'"):
        report.main(["--config", str(CONFIG), "--profile", "nope", "--fits", str(fit), "--out", str(tmp_path / "o")])
    (fit / "metrics.json").unlink()
    with pytest.raises(DipError, match=r"metrics\.json: no such file"):
        report.main(["--config", str(CONFIG), "--profile", "quick", "--fits", str(fit), "--out", str(tmp_path / "o")])


# ------------------------------------------------------------------------------------------- dip compare
def write_metrics(path: Path, rows: list[tuple[str, str, int, float]], profile: str = "ci") -> Path:
    pd.DataFrame(rows, columns=["task", "image", "seed", "psnr"]).assign(profile=profile).to_csv(path, index=False)
    return path


BASE = [("table1", "barbara", 0, 25.0), ("table1", "barbara", 1, 25.5), ("fig7_text", "kate", 0, 28.0)]


def compare(tmp_path: Path, current_rows, tolerance: str = "0.3") -> int:
    base = write_metrics(tmp_path / "baseline.csv", BASE)
    cur = write_metrics(tmp_path / "metrics.csv", current_rows)
    return compare_cmd.main(["--metrics", str(cur), "--baseline", str(base), "--tolerance", tolerance])


def test_compare_passes_within_tolerance(tmp_path, capsys):
    rows = [(t, i, s, p + d) for (t, i, s, p), d in zip(BASE, (0.29, -0.3, 0.0))]  # exactly 0.3 dB still passes
    assert compare(tmp_path, rows) == 0
    out = capsys.readouterr().out
    assert out.count(" ok") == 3 and "baseline_psnr" in out and "current_psnr" in out
    assert out.strip().splitlines()[-1].startswith("regression gate: PASS")


def test_compare_fails_beyond_tolerance_and_prints_every_row(tmp_path, capsys):
    rows = [BASE[0], ("table1", "barbara", 1, 25.0), BASE[2]]  # seed 1 dropped by 0.5 dB
    assert compare(tmp_path, rows) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    bad = next(line for line in lines if "FAIL: |Δ| > 0.3 dB" in line)
    assert "barbara" in bad and "-0.500" in bad
    assert sum(" ok" in line for line in lines) == 2  # the passing rows are printed too
    assert lines[-1].startswith("regression gate: FAIL") and "table1/barbara/seed1" in lines[-1]


def test_compare_fails_on_missing_rows(tmp_path, capsys):
    rows = BASE[:2] + [("table1", "boat", 0, 26.0)]  # kate missing; boat not in the baseline
    assert compare(tmp_path, rows) == 1
    out = capsys.readouterr().out
    assert "FAIL: missing in current" in out and "FAIL: missing in baseline" in out
    verdict = out.strip().splitlines()[-1]
    assert "fig7_text/kate/seed0 (missing in current)" in verdict
    assert "table1/boat/seed0 (missing in baseline)" in verdict


@pytest.mark.parametrize("baseline_profile", ["quick", None], ids=["other profile", "no profile column"])
def test_compare_refuses_a_baseline_of_another_profile(tmp_path, capsys, baseline_profile):
    base = write_metrics(tmp_path / "baseline.csv", BASE, profile=baseline_profile or "ci")
    if baseline_profile is None:
        pd.read_csv(base).drop(columns="profile").to_csv(base, index=False)
    cur = write_metrics(tmp_path / "metrics.csv", BASE)  # the same numbers: only the profile differs
    assert cli.main(["compare", "--metrics", str(cur), "--baseline", str(base), "--tolerance", "0.3"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"dip: error: {base}: "), err
    assert ("baseline of profile quick" in err[0] and "profile ci" in err[0]) if baseline_profile else "no profile" in err[0]
    assert "regression gate" not in captured.out


def test_compare_config_defaults_and_write_baseline(tmp_path, capsys):
    cur = write_metrics(tmp_path / "metrics.csv", BASE)
    base = tmp_path / "tests" / "baseline" / "ci_metrics.csv"
    cfg = {**CFG, "regression": {"baseline": str(base), "tolerance_db": 0.3}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    argv = ["--metrics", str(cur), "--config", str(tmp_path / "config.yaml")]
    with pytest.raises(DipError, match="make baseline"):
        compare_cmd.main(argv)
    assert compare_cmd.main(argv + ["--write-baseline"]) == 0
    assert list(pd.read_csv(base)["psnr"]) == [25.0, 25.5, 28.0]
    assert compare_cmd.main(argv) == 0
    assert "PASS" in capsys.readouterr().out


def test_write_baseline_records_the_machine_and_the_same_machine_is_compared_fit_by_fit(tmp_path, capsys):
    from dip.core.compute import machine

    cur = write_metrics(tmp_path / "metrics.csv", BASE)
    base = tmp_path / "ci_metrics.csv"
    assert compare_cmd.main(["--metrics", str(cur), "--baseline", str(base), "--write-baseline"]) == 0
    assert json.loads((tmp_path / "ci_metrics.machine.json").read_text()) == machine()
    worse = write_metrics(tmp_path / "worse.csv", [BASE[0], ("table1", "barbara", 1, 25.0), BASE[2]])
    assert compare_cmd.main(["--metrics", str(worse), "--baseline", str(base), "--tolerance", "0.3"]) == 1
    out = capsys.readouterr().out
    assert "judged together" not in out and "table1/barbara/seed1" in out.strip().splitlines()[-1]


def _other_machine_baseline(tmp_path: Path, rows) -> Path:
    base = write_metrics(tmp_path / "ci_metrics.csv", rows)
    (tmp_path / "ci_metrics.machine.json").write_text(json.dumps({"cpu": "another", "cpu_capability": "AVX512",
                                                                  "torch": "0"}))
    return base


@pytest.mark.parametrize("shift, expected", [(0.0, 0), (1.0, 1)], ids=["spread, no shift", "every fit 1 dB up"])
def test_a_baseline_of_another_machine_is_judged_over_all_fits(tmp_path, capsys, shift, expected):
    # fit-by-fit differences as large as the chaotic spread (one beyond the tolerance), but centred on 0
    spread = [0.45, -0.2, 0.1, -0.3, 0.05, -0.1, 0.2, -0.15]
    rows = [("table1", f"im{k}", 0, 30.0) for k in range(len(spread))]
    base = _other_machine_baseline(tmp_path, rows)
    cur = write_metrics(tmp_path / "metrics.csv", [(t, i, s, p + d + shift) for (t, i, s, p), d in zip(rows, spread)])
    assert compare_cmd.main(["--metrics", str(cur), "--baseline", str(base), "--tolerance", "0.3"]) == expected
    lines = capsys.readouterr().out.strip().splitlines()
    assert "judged together" in lines[-2] and "another" in lines[-2]
    assert lines[-1].startswith("regression gate: PASS" if expected == 0 else "regression gate: FAIL")
    assert "mean Δ over 8 fits" in lines[-1]


def test_a_baseline_of_another_machine_still_fails_on_a_missing_fit(tmp_path, capsys):
    base = _other_machine_baseline(tmp_path, BASE)
    cur = write_metrics(tmp_path / "metrics.csv", BASE[:2])
    assert compare_cmd.main(["--metrics", str(cur), "--baseline", str(base), "--tolerance", "0.3"]) == 1
    assert "1 rows missing" in capsys.readouterr().out.strip().splitlines()[-1]


# ------------------------------------------------------------------------------------------- dip figure7
def test_figure7_png_and_pdf(tmp_path, capsys):
    kate_src = tmp_path / "kate.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(kate_src)
    barbara_src = tmp_path / "barbara.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (40, 40), dtype=np.uint8)).save(barbara_src)
    box = {"top": 12, "left": 12, "height": 16, "width": 16}
    kate = make_fit(tmp_path, "fig7_text", "kate", 0, 30.0, "quick", crop=box, rgb=True)
    barbara = make_fit(tmp_path, "table1", "barbara", 0, 31.0, "quick", crop=box)
    out = tmp_path / "results" / "quick" / "figure7.png"
    argv = ["--kate-fit", str(kate), "--barbara-fit", str(barbara), "--kate-image", str(kate_src),
            "--barbara-image", str(barbara_src), "--paper-barbara", "32.22", "--profile", "quick", "--out", str(out)]
    assert figure.main(argv) == 0
    w, h = Image.open(out).size
    assert w > 1000 and h > 800 and out.stat().st_size > 20_000
    pdf = out.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 5_000
    assert sorted(p.name for p in out.parent.iterdir()) == ["figure7.pdf", "figure7.png"]

    row = figure.load_row(barbara, barbara_src, "quick", 32.22)
    assert row.label == "PSNR 31.00 dB\n(paper 32.22 dB)"
    assert np.array_equal(row.original, np.asarray(Image.open(barbara_src))[12:28, 12:28])


def test_figure7_errors_name_the_file(tmp_path):
    src = tmp_path / "barbara.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(src)
    fit = make_fit(tmp_path, "table1", "barbara", 0, 31.0, "quick")
    (fit / "observed.png").unlink()
    with pytest.raises(DipError, match=r"observed\.png: no such file"):
        figure.load_row(fit, src, "quick", None)
    with pytest.raises(DipError, match="mixing profiles"):
        figure.load_row(fit, src, "paper", None)
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(big)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(fit / "observed.png")
    with pytest.raises(DipError, match=r"observed\.png: is 16x16 gray but the \(cropped\) original"):
        figure.load_row(fit, big, "quick", None)


def test_staged_files_remove_temporaries_of_killed_writers(tmp_path):
    # A SIGKILLed `dip report` leaves .<name>.<pid>.<random>.tmp behind; the next writer deletes those whose
    # PID is gone and leaves a running writer's alone.
    import os

    from conftest import dead_pid
    from dip.data.atomic import StagedFiles

    stale = tmp_path / f".metrics.csv.{dead_pid()}.abc123.tmp"
    live = tmp_path / f".metrics.csv.{os.getppid()}.def456.tmp"
    stale.write_text("half")
    live.write_text("busy")
    with StagedFiles() as st:
        st.path(tmp_path / "metrics.csv").write_text("a,b\n")
    assert (tmp_path / "metrics.csv").read_text() == "a,b\n"
    assert not stale.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["metrics.csv", live.name])
