"""The Snakemake workflow: lint, the default profile, the DAG each profile plans, and config errors caught
before anything runs (one line naming the key)."""

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


RULES = ("fetch", "mask", "fit", "reference_fit", "baseline", "report", "figure7")
SOFTWARE_LINT = "Specify a conda environment or container for each rule."


def test_lint_reports_nothing_but_the_deliberately_missing_conda_envs():
    # The rules run `sys.executable -m dip`, the Python that runs Snakemake, so a conda: env would never be
    # used (README, "Software environment"); every other lint must stay clean.
    r = snakemake("--lint")
    out = r.stdout + r.stderr
    lints = re.findall(r"^    \* (.+?):?$", out, re.M)
    assert lints == [SOFTWARE_LINT] * len(RULES), out
    assert sorted(re.findall(r"^Lints for rule (\w+) ", out, re.M)) == sorted(RULES), out
    assert "Lints for snakefile" not in out


def test_no_conda_directive_is_left():
    sources = [ROOT / "Snakefile", *(ROOT / "workflow" / "rules").glob("*.smk")]
    assert len(sources) == 6
    assert not [f.name for f in sources if re.search(r"^\s*conda:", f.read_text(), re.M)]


def test_default_profile_is_picked_up_without_profile_flag():
    r = snakemake("-n", "--forceall", "--config", "profile=ci")
    assert r.returncode == 0, r.stderr
    assert "Using workflow specific profile profiles/default" in r.stderr  # the link to workflow/profiles
    settings = yaml.safe_load((ROOT / "workflow/profiles/default/config.yaml").read_text())
    assert settings["cores"] == "all" and settings["rerun-incomplete"] and settings["printshellcmds"]
    assert settings["retries"] >= 1 and settings["show-failed-logs"]
    # printshellcmds comes from the profile: the dry run prints the commands without -p
    assert " fit data/raw/" in r.stdout


@pytest.mark.parametrize("profile, seeds", [("paper", 3), ("quick", 2), ("ci", 2)])
def test_dry_run_plans_one_fit_per_task_image_seed(profile, seeds):
    r = snakemake("-n", "--forceall", "--config", f"profile={profile}")
    assert r.returncode == 0, r.stderr
    counts = job_counts(r.stdout)
    assert counts["fit"] == counts["baseline"] == 12 * seeds  # 11 table1 images + kate; a classical fill beside each
    assert counts["mask"] == 11 * seeds
    assert counts["report"] == counts["figure7"] == counts["fetch"] == 1
    assert f"results/{profile}/fits/fig7_text/kate/seed0/metrics.json" in r.stdout


@pytest.mark.parametrize("value, planned", [(None, 0), ("true", 24), ("True", 24), ("false", 0)])
def test_reference_fits_are_planned_only_when_asked(value, planned):
    r = snakemake("-n", "--forceall", "-p", "--config", "profile=ci", *([f"reference={value}"] if value else []))
    assert r.returncode == 0, r.stderr
    counts = job_counts(r.stdout)
    assert counts.get("reference_fit", 0) == planned and counts["fit"] == 24
    refs = [line for line in r.stdout.splitlines() if "--engine authors" in line]
    assert len(refs) == planned
    # the same inputs and masks as our fits, their own folder, fp32 op by op
    assert all(".png results/ci/masks/" in f or "kate.png data/raw/fig7/kate_mask.png" in f for f in refs)
    assert all("-o results/ci/reference/" in f and "--precision fp32 --cuda-graph off" in f for f in refs)
    assert ("--reference-fits results/ci/reference/" in r.stdout) == bool(planned)


def test_the_reference_study_config_plans_three_seeds_of_both_engines():
    r = snakemake("-n", "--forceall", "--configfile", "config/studies/reference_quick.yaml", "--config",
                  "profile=quick")
    assert r.returncode == 0, r.stderr
    counts = job_counts(r.stdout)
    assert counts["fit"] == counts["reference_fit"] == 36 and counts["mask"] == 33


def test_a_reference_value_that_is_not_a_boolean_is_refused_in_one_line():
    r = snakemake("-n", "--config", "profile=ci", "reference=maybe")
    assert r.returncode != 0
    assert "config/config.yaml: reference: must be true or false, got 'maybe'" in r.stdout + r.stderr


def test_paper_profile_uses_the_authors_settings_and_requests_a_gpu():
    r = snakemake("-n", "--forceall", "-p", "--config", "profile=paper")
    fits = [line for line in r.stdout.splitlines() if " fit data/raw/" in line]
    assert len(fits) == 36  # seeds 0, 1, 2
    assert all("--set" not in f and "--crop" not in f and "--precision fp32" in f for f in fits)
    assert all("--cuda-graph auto" in f for f in fits)  # on CUDA devices (same numbers, docs/performance.md)
    assert "gpu=1" in r.stdout.replace(" ", "")


@pytest.mark.parametrize("value, flag", [(False, "off"), (True, "on"), ("auto", "auto")])
def test_profile_cuda_graph_becomes_the_fit_flag(tmp_path, value, flag):
    work = _config_copy(tmp_path, lambda c: c["profiles"]["paper"].update(cuda_graph=value))
    r = snakemake("-n", "--forceall", "-p", "--config", "profile=paper", cwd=work)
    fits = [line for line in r.stdout.splitlines() if " fit data/raw/" in line]
    assert r.returncode == 0 and len(fits) == 36, r.stderr
    assert all(f"--cuda-graph {flag} " in f for f in fits)


def _config_copy(tmp_path: Path, edit) -> Path:
    """A copy of the project (symlinked code) with an edited config, for error tests."""
    work = tmp_path / "proj"
    work.mkdir()
    for name in ("Snakefile", "profiles", "workflow", "src"):
        (work / name).symlink_to(ROOT / name)
    (work / "config").mkdir()
    for f in (ROOT / "config").iterdir():
        (shutil.copytree if f.is_dir() else shutil.copy)(f, work / "config" / f.name)
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    edit(cfg)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return work


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(profil="ci"),
     "config/config.yaml: Additional properties are not allowed ('profil' was unexpected)"),
    (lambda c: c["tasks"]["table1"].pop("drop"),
     "config/config.yaml: tasks.table1: mask: bernoulli needs drop (the fraction of pixels dropped, 0 < drop < 1)"),
    (lambda c: c["tasks"]["table1"]["images"].append("lenna"), "config: tasks.table1: unknown image 'lenna'"),
    (lambda c: c["profiles"]["ci"]["overrides"]["table1"].update(iteratons=5),
     "config: profiles.ci.overrides.table1: override iteratons: unknown preset key (known: "),
    (lambda c: c["profiles"]["ci"]["overrides"]["table1"].update(iterations=0),
     "config: profiles.ci.overrides.table1: --iterations: must be a positive integer, got 0"),
    (lambda c: c["profiles"]["ci"]["overrides"]["table1"].update(lr=0),
     "config: profiles.ci.overrides.table1: --lr: must be a positive finite number, got 0"),
    (lambda c: c["profiles"]["ci"].update(seeds=[]), "config/config.yaml: profiles.ci.seeds: [] should be non-empty"),
    (lambda c: c["profiles"]["ci"].update(cuda_graph="yes"),
     "config/config.yaml: profiles.ci.cuda_graph: 'yes' is not one of ['auto', True, False]"),
])
def test_bad_config_fails_before_anything_runs_with_one_line(tmp_path, edit, message):
    work = _config_copy(tmp_path, edit)
    r = snakemake("-n", "--config", "profile=ci", cwd=work)
    assert r.returncode != 0
    lines = (r.stdout + r.stderr).splitlines()
    assert message in lines[[i for i, line in enumerate(lines) if " in file " in line][0] + 1], lines
    assert "Failed validating" not in r.stdout + r.stderr  # no dump of the schema and the instance
    assert not (work / "results").exists()


def test_schema_defaults_fill_in_optional_keys(tmp_path):
    # cuda_graph (auto) and crop_at ({}) have defaults in workflow/schemas/config.schema.yaml
    work = _config_copy(tmp_path, lambda c: [p.pop(k, None) for p in c["profiles"].values()
                                               for k in ("cuda_graph", "crop_at")])
    r = snakemake("-n", "--forceall", "--config", "profile=ci", cwd=work)
    fits = [line for line in r.stdout.splitlines() if " fit data/raw/" in line]
    assert r.returncode == 0 and len(fits) == 24, r.stderr
    assert all("--cuda-graph auto " in f and "--crop-at" not in f for f in fits)


def test_per_task_values_come_from_the_config(tmp_path):
    work = _config_copy(tmp_path, lambda c: c["tasks"]["table1"].update(images=["barbara"]))  # figure7 needs it
    r = snakemake("-n", "--forceall", "--config", "profile=ci", cwd=work)
    fits = [line for line in r.stdout.splitlines() if " fit data/raw/" in line]
    assert r.returncode == 0 and len(fits) == 4, r.stderr
    assert sum("--dataset table1 " in f and "--preset table1 " in f and "table1/barbara.png" in f for f in fits) == 2
    assert sum("--dataset fig7 " in f and "--preset fig7_text " in f for f in fits) == 2


def test_unknown_profile_is_named():
    r = snakemake("-n", "--config", "profile=papr")
    assert r.returncode != 0
    assert "unknown profile 'papr' (known: paper, quick, ci)" in r.stdout + r.stderr
