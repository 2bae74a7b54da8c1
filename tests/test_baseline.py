"""`dip baseline` (the classical fill beside every fit) and what the report and Figure 7 do with it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats as scipy_stats
from skimage.metrics import peak_signal_noise_ratio
from test_report import CONFIG, IMAGES, PAPER, make_fit, md_row, table

from conftest import TINY, dip, make_image, make_mask
from dip import cli
from dip.data.images import sha256_file
from dip.report import aggregate as report
from dip.report import figure7

PAPYAN_BARBARA = 28.14


def baseline(image: Path, mask: Path, out: Path, *extra: str, profile: str = "ci", task: str = "table1",
             name: str = "img", seed: int = 0) -> dict:
    r = dip("baseline", image, mask, "-o", out, "--seed", seed, "--tag", f"profile={profile}",
            "--tag", f"task={task}", "--tag", f"image={name}", *extra)
    assert r.returncode == 0, r.stderr
    assert str(out) in r.stdout and "biharmonic fill" in r.stdout
    return json.loads((out / "metrics.json").read_text())


# ------------------------------------------------------------------------------------------- dip baseline
def test_baseline_writes_its_layout_scored_like_a_fit_and_is_deterministic(tmp_path):
    img = make_image(tmp_path / "img.png", (40, 36))
    mask = make_mask(tmp_path / "mask.png", (40, 36))
    a, b = tmp_path / "a", tmp_path / "b"
    m = baseline(img, mask, a, "--crop", "24", "--crop-at", "4,6", seed=3)
    assert sorted(p.name for p in a.iterdir()) == ["metrics.json", "output.png"]
    assert not list(tmp_path.glob(".*.tmp"))
    assert (m["engine"], m["method"], m["seed"]) == ("classical", "biharmonic", 3)
    assert m["tags"] == {"profile": "ci", "task": "table1", "image": "img"}
    assert m["crop"] == {"top": 4, "left": 6, "height": 24, "width": 24}  # dip fit's own crop (load_inputs)
    assert m["mask_sha256"] == m["inputs"]["mask"]["sha256"] == sha256_file(mask)
    # scored like a fit: the 8-bit output.png as written, against the cropped ground truth
    out = np.asarray(Image.open(a / "output.png"))
    gt = np.asarray(Image.open(img))[4:28, 6:30]
    known = np.asarray(Image.open(mask))[4:28, 6:30] > 0
    assert out.shape == (24, 24) and np.array_equal(out[known], gt[known])  # known pixels kept exactly
    assert m["psnr"] == pytest.approx(peak_signal_noise_ratio(gt, out, data_range=255), abs=1e-9)
    assert m["psnr_missing"] == pytest.approx(peak_signal_noise_ratio(gt[~known], out[~known], data_range=255))
    assert m["missing_fraction"] == pytest.approx(1 - known.mean())
    assert 0 < m["ssim"] <= 1 and m["wall_seconds"] >= 0
    # whole-image MSE = missing share x missing-pixel MSE (the fill keeps the known pixels): the two PSNRs agree
    assert m["psnr"] == pytest.approx(m["psnr_missing"] - 10 * math.log10(m["missing_fraction"]), abs=1e-9)
    m2 = baseline(img, mask, b, "--crop", "24", "--crop-at", "4,6", seed=3)
    assert (a / "output.png").read_bytes() == (b / "output.png").read_bytes()
    m.pop("wall_seconds"), m2.pop("wall_seconds")
    m["inputs"]["mask"], m2["inputs"]["mask"] = m["inputs"]["mask"]["sha256"], m2["inputs"]["mask"]["sha256"]
    assert m == m2  # all but the time, bit for bit


def test_baseline_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path):
    img = make_image(tmp_path / "img.png")
    full = tmp_path / "full.png"
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(full)
    for args, expected in (((full,), "full.png: has no missing pixel"),
                           ((make_mask(tmp_path / "m.png"), "--crop", "64"), "--crop: 64 is larger"),
                           ((tmp_path / "nope.png",), "nope.png: no such file")):
        r = dip("baseline", img, *args, "-o", tmp_path / "out")
        assert r.returncode == 2 and expected in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_fits_record_psnr_on_the_missing_pixels(tmp_path):
    img, mask = make_image(tmp_path / "img.png"), make_mask(tmp_path / "mask.png")
    out = tmp_path / "fit"
    r = dip("fit", "--image", img, "--mask", mask, "--preset", "table1", "--out", out, "--iterations", "20",
            "--threads", "1", *TINY)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    gt, est = np.asarray(Image.open(img)), np.asarray(Image.open(out / "output.png"))
    known = np.asarray(Image.open(mask)) > 0
    assert m["psnr_missing"] == pytest.approx(peak_signal_noise_ratio(gt[~known], est[~known], data_range=255))
    assert m["psnr"] == pytest.approx(peak_signal_noise_ratio(gt, est, data_range=255), abs=1e-9)  # unchanged
    b = baseline(img, mask, tmp_path / "baseline", profile="quick")
    assert b["inputs"]["image"]["sha256"] == m["inputs"]["image"]["sha256"]
    assert (b["mask_sha256"], b["crop"]) == (m["inputs"]["mask"]["sha256"], m["crop"])


# ------------------------------------------------------------------------------------------- dip report
def make_baseline(root: Path, fit: Path, psnr: float, mask_sha: str | None = None) -> Path:
    """A baseline folder beside a make_fit() folder: the fit's tags, seed, image and crop; its mask unless told."""
    f = json.loads((fit / "metrics.json").read_text())
    task, image, seed = f["tags"]["task"], f["tags"]["image"], f["seed"]
    d = root / "baselines" / task / image / f"seed{seed}"
    d.mkdir(parents=True)
    Image.open(fit / "output.png").save(d / "output.png")
    mask = mask_sha or (f["inputs"]["mask"] or {}).get("sha256")
    m = {"engine": "classical", "method": "biharmonic", "psnr": psnr, "ssim": 0.7, "psnr_missing": psnr - 3.0,
         "missing_fraction": 0.5, "wall_seconds": 0.1, "seed": seed, "mask_sha256": mask, "crop": f["crop"],
         "inputs": {**f["inputs"], "mask": {"path": "m.png", "sha256": mask}}, "tags": f["tags"]}
    (d / "metrics.json").write_text(json.dumps(m))
    return d


def fit_with_mask(root: Path, task: str, image: str, seed: int, psnr: float, profile: str = "ci", **kw) -> Path:
    d = make_fit(root, task, image, seed, psnr, profile, **kw)
    m = json.loads((d / "metrics.json").read_text())
    m["inputs"]["mask"] = {"path": f"results/{profile}/masks/{image}_seed{seed}.png", "sha256": f"mask-{image}-{seed}"}
    m["psnr_missing"] = psnr - 2.0
    (d / "metrics.json").write_text(json.dumps(m))
    return d


def report_with_baselines(tmp_path: Path, profile: str, fits: list[Path], baselines: list[Path]) -> Path:
    out = tmp_path / "results" / profile
    argv = ["--config", str(CONFIG), "--profile", profile, "--fits", *map(str, fits),
            "--baselines", *map(str, baselines), "--out", str(out)]
    assert report.main(argv) == 0
    return out


def test_table1_shows_papyan_the_classical_fill_and_dip_minus_classical_over_seeds(tmp_path):
    # ci profile, 3 seeds: ours = paper + (-1, 0, +1), the fill = paper - 2 + (-0.5, 0, +0.5) (barbara: lower)
    fits, baselines = [], []
    for im in IMAGES:
        for s, d in enumerate((-1.0, 0.0, 1.0)):
            fit = fit_with_mask(tmp_path, "table1", im, s, PAPER[im] + d)
            fits.append(fit)
            baselines.append(make_baseline(tmp_path, fit, PAPER[im] - (4.0 if im == "barbara" else 2.0) + d / 2))
    kate = fit_with_mask(tmp_path, "fig7_text", "kate", 0, 30.0)
    out = report_with_baselines(tmp_path, "ci", [*fits, kate], [*baselines, make_baseline(tmp_path, kate, 29.0)])
    t = table(out)
    assert list(t.columns[:3]) == ["paper_psnr", "papyan_psnr", "psnr_mean"]
    b = t.loc["barbara"]
    assert (b["papyan_psnr"], b["classical_psnr_mean"], b["classical_n"]) == pytest.approx(
        (PAPYAN_BARBARA, PAPER["barbara"] - 4, 3))
    ours, fill = [PAPER["barbara"] + d for d in (-1, 0, 1)], [PAPER["barbara"] - 4 + d / 2 for d in (-1, 0, 1)]
    ci = scipy_stats.ttest_ind(ours, fill, equal_var=False).confidence_interval(0.95)
    assert (b["dip_minus_classical"], b["dip_minus_classical_ci_low"], b["dip_minus_classical_ci_high"]) == (
        pytest.approx((4.0, ci.low, ci.high), abs=1e-4))  # table1.csv: 4 decimals
    assert b["dip_minus_classical_verdict"] == "higher"
    assert (b["psnr_missing_mean"], b["classical_psnr_missing_mean"]) == pytest.approx(
        (PAPER["barbara"] - 2, PAPER["barbara"] - 7))
    assert b["dip_minus_classical_missing"] == pytest.approx(5.0) and b["classical_method"] == "biharmonic"
    # the Average row: the mean of the 11 per-image deltas (ten of 2 dB, one of 4) with a t interval over them
    deltas = [4.0] + [2.0] * 10
    avg = t.loc["Average"]
    low, high = scipy_stats.ttest_1samp(deltas, 0.0).confidence_interval(0.95)
    assert (avg["dip_minus_classical"], avg["dip_minus_classical_ci_low"], avg["dip_minus_classical_ci_high"]) == (
        pytest.approx((np.mean(deltas), low, high), abs=1e-4))
    assert avg["dip_minus_classical_verdict"] == "higher (11 images)" and avg["classical_n"] == 11
    assert avg["papyan_psnr"] == pytest.approx(31.186, abs=1e-3)
    assert t.loc["barbara", "verdict"] == "not comparable (profile ci)"  # the verdict against the paper: unchanged
    row = md_row(out, "barbara")
    assert row[:4] == ["barbara", "32.22", "28.14", "32.22 ± 1.00"]
    assert row[7:9] == ["28.22 ± 0.50", f"+4.00 [{ci.low:+.2f}, {ci.high:+.2f}]"]
    assert md_row(out, "Average")[8] == f"+2.18 [{low:+.2f}, {high:+.2f}]"
    md = (out / "table1.md").read_text()
    header = [cell.strip() for cell in next(line for line in md.splitlines() if line.startswith("| Image")).split("|")]
    assert header[1:10] == ["Image", "Paper DIP (dB)", "Paper Papyan et al. (dB)", "Ours final (the claim), mean ± std",
                            "n seeds", "Δ (dB)", "Verdict", "Classical fill (biharmonic), mean ± std",
                            "DIP − classical [95% CI]"]
    assert "DIP − classical [95% CI]" in md and "On the missing pixels alone" in md
    s = json.loads((out / "summary.json").read_text())
    assert s["table1_dip_minus_classical"] == pytest.approx(np.mean(deltas), abs=1e-4)
    c = pd.read_csv(out / "classical_metrics.csv")
    assert len(c) == 34 and list(c.columns[:4]) == ["task", "image", "seed", "method"]


def test_one_seed_gives_a_difference_without_an_interval(tmp_path):
    fit = fit_with_mask(tmp_path, "table1", "house", 0, 38.0, "paper")
    out = report_with_baselines(tmp_path, "paper", [fit], [make_baseline(tmp_path, fit, 35.0)])
    h = table(out).loc["house"]
    assert h["dip_minus_classical"] == pytest.approx(3.0) and math.isnan(h["dip_minus_classical_ci_low"])
    assert h["verdict"] == "off by -1.16 dB"  # the claim against the paper, as without baselines
    assert md_row(out, "house")[8] == "+3.00 (no interval: 1 seed)"


def test_report_refuses_a_baseline_made_from_another_mask_in_one_line(tmp_path, capsys):
    fit = fit_with_mask(tmp_path, "table1", "barbara", 0, 30.0)
    other = make_baseline(tmp_path, fit, 28.0, mask_sha="0123456789abcdef-another-mask")
    out = tmp_path / "results" / "ci"
    argv = ["report", "--config", str(CONFIG), "--profile", "ci", "--fits", str(fit), "--baselines", str(other),
            "--out", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"dip: error: {other / 'metrics.json'}: made from another mask"), err
    assert "0123456789ab vs mask-barbar" in err[0]
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("what", ["no fit beside it", "a fit given as a baseline", "other crop", "other profile"])
def test_report_refuses_baselines_that_do_not_stand_beside_their_fit(tmp_path, capsys, what):
    fit = fit_with_mask(tmp_path, "table1", "barbara", 0, 30.0)
    b = make_baseline(tmp_path, fit, 28.0)
    fits = [fit]
    m = json.loads((b / "metrics.json").read_text())
    if what == "no fit beside it":
        fits = [fit_with_mask(tmp_path, "table1", "boat", 0, 30.0)]
        expected = "no fit of table1/barbara seed 0 among --fits"
    elif what == "a fit given as a baseline":
        b, expected = fit, "not a baseline (engine 'ours'"
    elif what == "other crop":
        m["crop"] = {"top": 1, "left": 0, "height": 16, "width": 16}
        expected = "made from another crop than its fit"
    else:
        m["tags"]["profile"] = "quick"
        expected = "mixing profiles"
    (b / "metrics.json").write_text(json.dumps(m)) if b != fit else None
    argv = ["report", "--config", str(CONFIG), "--profile", "ci", "--fits", *map(str, fits), "--baselines", str(b),
            "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and "metrics.json" in err[0], err


# ------------------------------------------------------------------------------------------- dip figure7
def test_figure7_puts_the_classical_fill_beside_ours(tmp_path, capsys):
    sources = {}
    for name, rgb in (("kate", True), ("barbara", False)):
        shape = (40, 40, 3) if rgb else (40, 40)
        sources[name] = tmp_path / f"{name}.png"
        Image.fromarray(np.random.default_rng(len(name)).integers(0, 256, shape, dtype=np.uint8)).save(sources[name])
    box = {"top": 12, "left": 12, "height": 16, "width": 16}
    kate = fit_with_mask(tmp_path, "fig7_text", "kate", 0, 30.0, "quick", crop=box, rgb=True)
    barbara = fit_with_mask(tmp_path, "table1", "barbara", 0, 31.0, "quick", crop=box)
    kb, bb = make_baseline(tmp_path, kate, 29.5), make_baseline(tmp_path, barbara, 28.0)
    out = tmp_path / "results" / "quick" / "figure7.png"
    argv = ["--kate-fit", str(kate), "--barbara-fit", str(barbara), "--kate-image", str(sources["kate"]),
            "--barbara-image", str(sources["barbara"]), "--paper-barbara", "32.22", "--profile", "quick",
            "--out", str(out)]
    assert figure7.main([*argv, "--kate-baseline", str(kb), "--barbara-baseline", str(bb)]) == 0
    four = Image.open(out).size
    assert figure7.main(argv) == 0  # without baselines: three columns, as before
    assert four[0] > Image.open(out).size[0] * 1.25
    row = figure7.add_classical(figure7.load_row(barbara, sources["barbara"], "quick", 32.22), barbara, bb, "quick")
    assert row.label == "PSNR 31.00 dB\nmissing pixels 29.00 dB\n(paper 32.22 dB)"
    assert row.classical_title == "Classical fill (biharmonic)"
    assert row.classical_label == "PSNR 28.00 dB\nmissing pixels 25.00 dB"
    m = json.loads((bb / "metrics.json").read_text())
    m["mask_sha256"] = "another"
    (bb / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(report.DipError, match="made from another mask than its fit"):
        figure7.add_classical(row, barbara, bb, "quick")
    with pytest.raises(report.DipError, match="no fit of fig7_text/kate seed 0"):
        figure7.add_classical(row, barbara, kb, "quick")  # kate's fill beside barbara's fit
