"""The paper profile never fits on a CPU by accident (issue 20, point 1): a fit that asks for CUDA where torch sees
none stops before its first iteration with one line naming the problem and the way out; the paper profile asks
for CUDA and `--config device=cpu` insists on the CPU; every fit's log starts with where it runs."""

from __future__ import annotations

import re

import pytest
import torch
from test_workflow import _config_copy, snakemake

from conftest import MIRROR, TINY, dip
from dip.core import compute
from dip.errors import DipError

DEVICE_LINE = r"^\[dip\] device (cpu|cuda \(.+\)|mps), precision (fp32|bf16|tf32), \d+ threads?, torch \S+, CUDA \S+"


def test_cuda_without_a_device_stops_before_any_iteration_in_one_line(img, mask, tmp_path, monkeypatch):
    out = tmp_path / "fit"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU visible, whatever this machine has
    r = dip("fit", "--image", img, "--mask", mask, "--out", out, "--preset", "table1", *TINY, "--iterations", "5",
            "--device", "cuda")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dip: error: --device: cuda requested, but torch "), lines
    problem = "is a CPU-only build" if torch.version.cuda is None else "sees no GPU, CUDA_VISIBLE_DEVICES=''"
    assert problem in lines[0]
    fix = "install the CUDA build of torch" if torch.version.cuda is None else "sbatch --gpus=1"
    assert fix in lines[0] and "--config device=cpu" in lines[0] and "--device cpu" in lines[0]
    assert not out.exists() and not out.with_name("fit.ckpt").exists()


def test_a_cuda_build_that_sees_no_gpu_names_the_scheduler(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(DipError) as e:
        compute.pick_device("cuda")
    text = str(e.value)
    assert "\n" not in text and text.startswith("--device: cuda requested, but torch ")
    assert "(CUDA 13.0) sees no GPU, CUDA_VISIBLE_DEVICES=''" in text
    assert "ask the scheduler for it (sbatch --gpus=1" in text and "--config device=cpu" in text


def test_every_fit_log_starts_with_the_device_line(img, mask, tmp_path):
    r = dip("fit", "--image", img, "--mask", mask, "--out", tmp_path / "fit", "--preset", "table1", *TINY,
            "--iterations", "5", "--device", "cpu", "--threads", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    first = r.stderr.splitlines()[0]
    assert re.match(DEVICE_LINE, first), first
    assert first.startswith("[dip] device cpu, precision fp32, 1 thread, torch ") and torch.__version__ in first


def test_paper_profile_asks_for_cuda_and_device_cpu_insists():
    r = snakemake("-n", "--forceall", "-p", "--config", "profile=paper")
    fits = [line for line in r.stdout.splitlines() if " fit data/raw/" in line]
    assert r.returncode == 0 and len(fits) == 36, r.stderr
    assert all("--device cuda " in f for f in fits)
    r = snakemake("-n", "--forceall", "-p", "--config", "profile=paper", "device=cpu")
    fits = [line for line in r.stdout.splitlines() if " fit data/raw/" in line]
    assert r.returncode == 0 and len(fits) == 36 and all("--device cpu " in f for f in fits), r.stderr
    # the fit's log starts with dip fit's device line: the data check before it is silent unless it fails
    assert all(" fetch --verify-only " in f and " > /dev/null && " in f for f in fits)


def test_a_device_that_is_not_one_is_refused_in_one_line():
    r = snakemake("-n", "--config", "profile=ci", "device=gpu")
    assert r.returncode != 0
    assert "config/config.yaml: device: must be auto, cpu, cuda or mps (or null: the profile's device), got 'gpu'" \
        in r.stdout + r.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the paper fit would run")
def test_a_paper_fit_in_the_pipeline_stops_at_once_without_a_gpu(tmp_path):
    if not (MIRROR / "table1" / "house.png").is_file():
        pytest.skip(f"no data mirror at {MIRROR} (set DIP_DATA_MIRROR)")
    work = _config_copy(tmp_path, lambda c: c.update(data_mirror=str(MIRROR)))
    target = "results/paper/fits/table1/house/seed0/metrics.json"
    r = snakemake("--cores", "1", "--retries", "0", "--config", "profile=paper", "--", target, cwd=work)
    assert r.returncode != 0, r.stdout[-3000:]
    log = (work / "results/paper/logs/fit/table1_house_seed0.log").read_text().strip().splitlines()
    assert len(log) == 1 and log[0].startswith("dip: error: --device: cuda requested, but torch "), log
    assert "--config device=cpu" in log[0]
    fit = work / "results/paper/fits/table1/house"
    assert not (fit / "seed0").exists() and not (fit / "seed0.ckpt").exists()


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_precision_auto_is_bf16_only_where_the_cpu_has_it(monkeypatch, native, expected):
    monkeypatch.setattr(compute, "native_bf16", lambda: native)
    assert compute.resolve_precision("auto", torch.device("cpu")) == expected
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: native)
    assert compute.resolve_precision("auto", torch.device("cuda")) == expected
    assert compute.resolve_precision("auto", torch.device("mps")) == "fp32"
    for named in ("fp32", "bf16", "tf32"):  # a named precision is never changed
        assert compute.resolve_precision(named, torch.device("cpu")) == named


def test_a_fit_with_precision_auto_records_the_precision_that_ran(img, mask, tmp_path):
    import json

    out = tmp_path / "fit"
    r = dip("fit", img, mask, "-o", out, "--preset", "table1", *TINY, "--iterations", "5", "--device", "cpu",
            "--threads", "1", "--precision", "auto", "--no-progress")
    assert r.returncode == 0, r.stderr
    ran = "bf16" if compute.native_bf16() else "fp32"
    assert r.stderr.splitlines()[0].startswith(f"[dip] device cpu, precision {ran}, ")
    assert json.loads((out / "metrics.json").read_text())["precision"] == ran


def test_the_quick_profile_asks_for_auto_so_no_cpu_emulates_bf16():
    import yaml

    from conftest import ROOT

    quick = yaml.safe_load((ROOT / "config/config.yaml").read_text())["profiles"]["quick"]
    assert quick["precision"] == "auto" and quick["device"] == "cpu"
