"""The Snakemake workflow: lint, the DAG each profile plans, and config errors caught before anything runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args: str, cwd: Path = ROOT, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, env=env, **kw)


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_lint_is_clean():
    r = snakemake("--lint")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Congratulations, your workflow is in a good condition!" in r.stdout + r.stderr


@pytest.mark.parametrize("profile, seeds", [("paper", 1), ("quick", 2), ("ci", 2)])
def test_dry_run_plans_one_fit_per_task_image_seed(profile, seeds):
    r = snakemake("-n", "--forceall", "--config", f"profile={profile}")
    assert r.returncode == 0, r.stderr
    counts = job_counts(r.stdout)
    assert counts["fit"] == 12 * seeds  # 11 table1 images + kate
    assert counts["mask"] == 11 * seeds
    assert counts["report"] == counts["figure7"] == counts["fetch"] == 1
    assert f"results/{profile}/fits/fig7_text/kate/seed0/metrics.json" in r.stdout


def test_paper_profile_uses_the_authors_settings_and_requests_a_gpu():
    r = snakemake("-n", "--forceall", "-p", "--config", "profile=paper")
    fits = [line for line in r.stdout.splitlines() if " fit --image " in line]
    assert len(fits) == 12
    assert all("--set" not in f and "--crop" not in f and "--precision fp32" in f for f in fits)
    assert all("--cuda-graph auto" in f for f in fits)  # on CUDA devices (same numbers, docs/performance.md)
    assert "gpu=1" in r.stdout.replace(" ", "")


@pytest.mark.parametrize("value, flag", [(False, "off"), (True, "on"), ("auto", "auto")])
def test_profile_cuda_graph_becomes_the_fit_flag(tmp_path, value, flag):
    work = _config_copy(tmp_path, lambda c: c["profiles"]["paper"].update(cuda_graph=value))
    r = snakemake("-n", "--forceall", "-p", "--config", "profile=paper", cwd=work)
    fits = [line for line in r.stdout.splitlines() if " fit --image " in line]
    assert r.returncode == 0 and len(fits) == 12, r.stderr
    assert all(f"--cuda-graph {flag} " in f for f in fits)


def _config_copy(tmp_path: Path, edit) -> Path:
    """A copy of the project (symlinked code) with an edited config, for error tests."""
    work = tmp_path / "proj"
    work.mkdir()
    for name in ("Snakefile", "workflow", "src"):
        (work / name).symlink_to(ROOT / name)
    (work / "config").mkdir()
    for f in (ROOT / "config").iterdir():
        shutil.copy(f, work / "config" / f.name)
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    edit(cfg)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return work


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(profil="ci"), "Additional properties are not allowed ('profil' was unexpected)"),
    (lambda c: c["tasks"]["table1"]["images"].append("lenna"), "unknown image 'lenna'"),
    (lambda c: c["profiles"]["ci"]["overrides"]["table1"].update(iteratons=5), "unknown preset key"),
    (lambda c: c["profiles"]["ci"]["overrides"]["table1"].update(iterations=0), "must be a positive integer"),
    (lambda c: c["profiles"]["ci"]["overrides"]["table1"].update(lr=0), "must be a positive finite number"),
    (lambda c: c["profiles"]["ci"].update(seeds=[]), "should be non-empty"),
    (lambda c: c["profiles"]["ci"].update(cuda_graph="yes"), "'yes' is not one of ['auto', True, False]"),
])
def test_bad_config_fails_before_anything_runs(tmp_path, edit, message):
    work = _config_copy(tmp_path, edit)
    r = snakemake("-n", "--config", "profile=ci", cwd=work)
    assert r.returncode != 0
    assert message in r.stdout + r.stderr
    assert not (work / "results").exists()


def test_unknown_profile_is_named():
    r = snakemake("-n", "--config", "profile=papr")
    assert r.returncode != 0
    assert "unknown profile 'papr' (known: paper, quick, ci)" in r.stdout + r.stderr
