"""The reference engine (`dip fit --engine authors`): the authors' code fetched and verified like the data, their
network in our loop's place, their backtracking as they apply it, resume after SIGKILL, and the comparison
of ours with it over seeds (parity.csv, table1.md).

The authors' code comes from the data mirror (``../shared/data/authors_code`` or $DIP_DATA_MIRROR): third-party
code, fetched into temporary folders here, never committed.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import MIRROR, ROOT, TINY, Watched, dip
from dip.data import fetch
from dip.data.manifest import load_manifest
from dip.engine.authors import DATASET, NotebookBacktrack
from dip.errors import DipError
from dip.report import stats
from dip.report.parity import parity, parity_markdown, parity_summary

MANIFEST = ROOT / "config" / "datasets.yaml"
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.fixture(scope="module")
def code(tmp_path_factory) -> Path:
    """The authors' code fetched from the mirror into a fresh folder; returns data/raw/authors_code."""
    if not (MIRROR / DATASET / "models" / "skip.py").is_file():
        pytest.fail(f"the data mirror {MIRROR} lacks {DATASET}/ (set DIP_DATA_MIRROR)")
    dest = tmp_path_factory.mktemp("raw")
    fetch.fetch(load_manifest(MANIFEST), dest, [DATASET], MIRROR)
    return dest / DATASET


def engine_args(code: Path, img: Path, mask: Path, out: Path, *extra: str) -> list:
    return ["fit", "--engine", "authors", "--authors-code", code, "--manifest", MANIFEST, "--image", img,
            "--mask", mask, "--out", out, "--preset", "table1", "--threads", "1", "--no-progress", *TINY, *extra]


# ----------------------------------------------------------------------------------------- fetched like data

def test_the_authors_code_is_fetched_byte_identical_with_its_paths(code):
    entries = load_manifest(MANIFEST)[DATASET]
    assert {e["path"] for e in entries.values()} >= {"LICENSE", "models/__init__.py", "models/skip.py"}
    for e in entries.values():
        assert (code / e["path"]).read_bytes() == (MIRROR / DATASET / e["path"]).read_bytes()
        assert e["url"].startswith("https://raw.githubusercontent.com/DmitryUlyanov/deep-image-prior/"
                                   "042e0d4c1e93f4b1eb0932781de55b8cff5e0f40/")
    assert not (ROOT / "src" / "dip" / "models").exists()


def test_a_changed_file_of_the_authors_code_is_refused_and_nothing_is_written(tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR / DATASET, mirror / DATASET)
    skip = mirror / DATASET / "models" / "skip.py"
    skip.write_text(skip.read_text() + "\nimport os  # injected\n")
    dest = tmp_path / "raw"
    r = dip("fetch", "--manifest", MANIFEST, "--dest", dest, "--dataset", DATASET, "--mirror", mirror)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "skip.py: sha256 mismatch" in lines[0] and "nothing written" in lines[0], r.stderr
    assert not (dest / DATASET / "models" / "skip.py").exists()
    assert not list(dest.rglob("*.tmp")) and not list(dest.rglob("*.part"))


@pytest.mark.parametrize("entry, message", [
    ({"path": "../evil.py"}, "must be a relative path of plain names"),
    ({"path": "/etc/passwd"}, "must be a relative path of plain names"),
    ({"path": "models/skip.py", "size": [1, 1], "mode": "L"}, "drop `size` and `mode`"),
    ({"path": "models/skip.py", "bytes": None}, "must be a positive integer"),
])
def test_a_bad_file_entry_is_refused_with_one_line(tmp_path, entry, message):
    good = {"url": "https://example.org/skip.py", "sha256": "0" * 64, "bytes": 10}
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "datasets": {"code": {"files": {"skip": {**good, **entry}}}}}))
    with pytest.raises(DipError, match=re.escape(message)):
        load_manifest(path)


def test_the_engine_refuses_a_missing_or_changed_copy_in_one_line(tmp_path, code, img, mask):
    broken = tmp_path / "raw" / DATASET
    shutil.copytree(code, broken)
    (broken / "models" / "common.py").unlink()
    r = dip(*engine_args(broken, img, mask, tmp_path / "out"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "the authors' code is not in place" in r.stderr and "dip fetch --dataset authors_code" in r.stderr
    assert not (tmp_path / "out").exists()


def test_the_engine_runs_fp32_only(tmp_path, code, img, mask):
    r = dip(*engine_args(code, img, mask, tmp_path / "out", "--precision", "bf16"))
    assert r.returncode == 2 and "the authors' engine runs fp32 only" in r.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------- the engine

def test_the_engine_writes_our_layout_and_what_the_notebook_shows(tmp_path, code, img, mask):
    out = tmp_path / "out"
    r = dip(*engine_args(code, img, mask, out, "--iterations", "40"))
    assert r.returncode == 0, r.stderr
    names = {p.name for p in out.iterdir()}
    assert {"output.png", "output_shown.png", "metrics.json", "curve.csv", "observed.png"} <= names
    m = json.loads((out / "metrics.json").read_text())
    assert m["engine"] == "authors" and m["shown"] == "f(z + sigma*eps_last)"  # table1: restoration.ipynb
    assert m["precision"] == "fp32" and m["cuda_graph"] is False and m["iterations"] == 40
    assert math.isfinite(m["psnr"]) and math.isfinite(m["psnr_shown"]) and m["psnr_shown"] != m["psnr"]
    # the same seed gives the same numbers
    again = tmp_path / "again"
    assert dip(*engine_args(code, img, mask, again, "--iterations", "40")).returncode == 0
    assert (again / "output.png").read_bytes() == (out / "output.png").read_bytes()
    assert (again / "output_shown.png").read_bytes() == (out / "output_shown.png").read_bytes()


def test_the_inpainting_notebook_shows_f_of_z(tmp_path, code, img, mask):
    out = tmp_path / "out"
    args = engine_args(code, img, mask, out, "--iterations", "20", "--set", "authors_notebook=inpainting")
    assert dip(*args).returncode == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["shown"] == "f(z)" and m["psnr_shown"] == m["psnr"]
    assert (out / "output_shown.png").read_bytes() == (out / "output.png").read_bytes()


def test_the_network_is_the_authors_skip_with_the_presets_sizes(code):
    from dip.core.network import SkipConfig, SkipNet, count_parameters, input_channels
    from dip.data.presets import resolve
    from dip.engine.authors import load_models

    models = load_models(code, MANIFEST)
    assert models.skip.__module__ == "dip_authors_models.skip"  # their function, from the fetched copy
    for preset, channels in (("table1", 1), ("fig7_text", 3), ("large_holes", 3), ("large_holes_meshgrid", 3)):
        p = resolve(preset)
        theirs = models.skip(input_channels(p), channels, num_channels_down=p["n_down"], num_channels_up=p["n_up"],
                             num_channels_skip=p["n_skip"], filter_size_down=p["k_down"], filter_size_up=p["k_up"],
                             filter_skip_size=p["k_skip"], upsample_mode=p["upsample"], need1x1_up=p["up_1x1"],
                             pad="reflection")
        assert count_parameters(theirs) == count_parameters(SkipNet(SkipConfig.from_preset(p, channels)))


def test_resume_after_sigkill_is_bitwise_identical(tmp_path, code, img, mask):
    extra = ["--iterations", "200", "--checkpoint-every", "10"]
    ref = tmp_path / "ref"
    assert dip(*engine_args(code, img, mask, ref, *extra)).returncode == 0
    out = tmp_path / "killed"
    p = Watched(*engine_args(code, img, mask, out, *extra))
    try:  # "it N/200" with N > 30 comes after the checkpoints of iterations 10, 20 and 30
        p.wait_for(r"\[dip\] it (\d+)/200 ", when=lambda m: int(m.group(1)) > 30)
    finally:
        p.proc.send_signal(signal.SIGKILL)
        p.proc.wait()
    assert not out.exists()
    at = torch.load(tmp_path / "killed.ckpt" / "checkpoint.pt", map_location="cpu", weights_only=True)["iteration"]
    assert 30 <= at < 200
    assert dip(*engine_args(code, img, mask, out, *extra)).returncode == 0
    m, r = (json.loads((d / "metrics.json").read_text()) for d in (out, ref))
    assert m["resumed_from"] == at and m["psnr"] == r["psnr"] and m["psnr_shown"] == r["psnr_shown"]
    for name in ("output.png", "output_shown.png", "curve.csv"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


# ----------------------------------------------------------------------------------------- their backtracking

def test_backtracking_restores_parameters_only_and_adam_still_steps():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    rule = NotebookBacktrack(backtrack_db=5.0, enabled=True)

    def step():
        opt.zero_grad()
        net(torch.ones(1, 3)).sum().backward()

    step()
    assert rule.check_perturbed(0, 20.0, net)  # accepted: kept as the last good parameters
    good = [p.detach().clone() for p in net.parameters()]
    opt.step()
    step()
    assert rule.check_perturbed(1, 16.0, net)  # a drop of 4 dB is within the 5 dB
    kept = [p.detach().clone() for p in net.parameters()]
    opt.step()
    adam_steps = opt.state[net.weight]["step"].item()
    step()
    assert not rule.check_perturbed(2, 10.0, net)  # a drop of 6 dB: the parameters go back
    assert all(torch.equal(p, k) for p, k in zip(net.parameters(), kept)) and rule.backtracks == 1
    assert not all(torch.equal(p, g) for p, g in zip(net.parameters(), good))
    opt.step()  # as in their closure: Adam steps with the gradients of the refused state, its state kept
    assert opt.state[net.weight]["step"].item() == adam_steps + 1
    assert not all(torch.equal(p, k) for p, k in zip(net.parameters(), kept))


def test_a_real_authors_fit_forced_to_backtrack_restores_parameters_and_adam_goes_on(tmp_path, code, img, mask,
                                                                                     monkeypatch):
    # A tiny AuthorsFit (their network, our loop) whose check at iteration DROP sees the masked PSNR of the
    # perturbed output fall 1 dB more than their threshold: the parameters go back to the snapshot of the last
    # accepted check, while Adam's step count and moments go on from where they were (restoration.ipynb's
    # closure restores parameters only), and Adam then steps from the snapshot with the refused state's gradients.
    import copy

    import dip.engine.authors
    from dip.data.presets import resolve
    from dip.engine.authors import AuthorsFit
    from dip.engine.request import FitRequest

    tiny = {"n_down": [8, 8, 8], "n_up": [8, 8, 8], "n_skip": [2, 2, 2], "iterations": 12, "eval_every": 2,
            "lr": 0.01}
    fit = AuthorsFit(FitRequest(image=img, mask=mask, gt=img, out=tmp_path / "out", preset="table1",
                                params=resolve("table1", tiny), threads=1, engine="authors", authors_code=code,
                                manifest=MANIFEST), progress=False)
    rule, opt, params = fit.guard, fit.optimizer, list(fit.net.parameters())
    DROP, now = 6, {"it": -1}
    measured = dip.engine.authors.psnr_known

    def collapsing(observed, estimate, known):
        value = measured(observed, estimate, known)
        return rule.last_psnr - rule.backtrack_db - 1.0 if now["it"] == DROP else value

    monkeypatch.setattr(dip.engine.authors, "psnr_known", collapsing)
    at_update, update = {}, fit.step.update

    def watched_update():  # Adam's step of iteration DROP: what it starts from
        if now["it"] == DROP:
            at_update.update(params=[p.detach().clone() for p in params], grads=[p.grad.clone() for p in params],
                             adam=copy.deepcopy(opt.state_dict()))
        update()

    fit.step.update = watched_update
    for it in range(tiny["iterations"]):
        if it == DROP:
            snapshot, snapshot_at = [t.clone() for t in rule.last], rule.good_iteration
            refused, adam_before = [p.detach().clone() for p in params], copy.deepcopy(opt.state_dict())
        now["it"] = it
        fit.iterate(it)
        if it == DROP:
            after = [p.detach().clone() for p in params]
    fit.close()

    assert rule.backtracks == 1 and snapshot_at == DROP - 2 and rule.good_iteration == tiny["iterations"] - 1
    assert not all(torch.equal(r, s) for r, s in zip(refused, snapshot))  # the refused state was another one
    assert all(torch.equal(p, s) for p, s in zip(at_update["params"], snapshot))  # parameters: back to the snapshot
    steps = [st["step"].item() for st in at_update["adam"]["state"].values()]
    assert steps == [DROP] * len(params)  # Adam's step count goes on (the snapshot's was DROP - 2)
    for i, st in adam_before["state"].items():  # and its moments are those of the refused state, untouched
        for k in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(at_update["adam"]["state"][i][k], st[k]), (i, k)
    # the step itself: torch's Adam from the snapshot, with the moments kept and the refused state's gradients
    replay = [s.clone().requires_grad_() for s in snapshot]
    adam = torch.optim.Adam(replay, lr=tiny["lr"])
    adam.load_state_dict(adam_before)
    for r, g in zip(replay, at_update["grads"]):
        r.grad = g.clone()
    adam.step()
    assert all(torch.equal(a, r.detach()) for a, r in zip(after, replay))
    assert opt.state_dict()["state"][0]["step"].item() == tiny["iterations"]  # every iteration stepped


def test_the_inpainting_notebook_never_backtracks():
    rule = NotebookBacktrack(backtrack_db=5.0, enabled=False)
    net = torch.nn.Linear(2, 2)
    assert rule.check_perturbed(0, 30.0, net) and rule.check_perturbed(1, -100.0, net) and rule.backtracks == 0


# ----------------------------------------------------------------------------------------- ours vs theirs

def runs(values: dict[str, list[float]], column: str = "psnr", **extra) -> pd.DataFrame:
    return pd.DataFrame([{"task": "table1", "image": image, "seed": s, column: v, **extra}
                         for image, vs in values.items() for s, v in enumerate(vs)])


def test_parity_is_welch_per_image_on_both_outputs_in_config_order():
    ours = runs({"house": [31.0, 31.4, 31.2], "barbara": [30.0, 30.2, 29.9]})
    theirs = runs({"house": [31.1, 30.9, 31.0], "barbara": [29.0, 29.1, 29.2]})
    theirs["psnr_shown"] = theirs["psnr"] - 1.0
    t = parity(ours, theirs, CONFIG)
    assert list(t["image"]) == ["barbara", "barbara", "house", "house"]  # config order: barbara first
    assert list(t["authors_output"]) == ["f(z)", "shown", "f(z)", "shown"]
    b = t[(t["image"] == "barbara") & (t["authors_output"] == "f(z)")].iloc[0]
    want = stats.welch(np.array([30.0, 30.2, 29.9]), np.array([29.0, 29.1, 29.2]))
    assert b["delta"] == pytest.approx(want["delta"]) and b["ci_low"] == pytest.approx(want["ci_low"])
    assert b["verdict"] == "higher"
    h = t[(t["image"] == "house") & (t["authors_output"] == "shown")].iloc[0]
    assert h["delta"] == pytest.approx(31.2 - 30.0) and h["verdict"] == "higher"
    md = parity_markdown(t, CONFIG)
    assert "## Ours vs the authors' code" in md and "| barbara" in md and "Overall Δ ours − authors f(z)" in md
    s = parity_summary(t)
    assert s["parity_images"] == 2
    assert s["parity_mean_delta_vs_authors"] == pytest.approx(round(((31.2 - 31.0) + (30.0333 - 29.1)) / 2, 4),
                                                              abs=1e-3)


def test_report_refuses_fits_of_the_wrong_engine(tmp_path, img, mask):
    fit = tmp_path / "fit"
    r = dip("fit", "--image", img, "--mask", mask, "--out", fit, "--preset", "table1", "--iterations", "10",
            "--threads", "1", "--no-progress", *TINY, "--tag", "profile=ci", "--tag", "task=table1",
            "--tag", "image=barbara")
    assert r.returncode == 0, r.stderr
    r = dip("report", "--profile", "ci", "--fits", fit, "--reference-fits", fit, "--out", tmp_path / "rep")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "fit of engine 'ours' given as --reference-fits, which takes engine 'authors' fits" in r.stderr
    assert not (tmp_path / "rep").exists()
