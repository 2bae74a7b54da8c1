"""DVC: `dvc exp run -S profile=ci` switches the profile, metrics/plots show, and push -> fresh clone -> pull
gives byte-identical data and results (with a real local remote directory); the fetch stage honours the
config's data_mirror; dvc.yaml tracks the whole config."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import MIRROR, ROOT

pytestmark = pytest.mark.pipeline
BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path, mirror_env: bool = True, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``cmd`` with this venv first on PATH; DIP_DATA_MIRROR set to the mirror, or removed."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "DIP_DATA_MIRROR": str(MIRROR),
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    if not mirror_env:
        del env["DIP_DATA_MIRROR"]
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    assert not check or r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def git_project(work: Path, edit=lambda cfg: None) -> Path:
    """The working tree's files (tracked and untracked, not ignored) in a new git repository at ``work``, with
    a smaller ci task list and ``edit`` applied to the config."""
    if not (MIRROR / "table1").is_dir():
        pytest.skip(f"no data mirror at {MIRROR} (set DIP_DATA_MIRROR)")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (work / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, work / f)
    cfg = yaml.safe_load((work / "config/config.yaml").read_text())
    cfg["tasks"]["table1"]["images"] = ["house", "barbara"]  # keep the test short: 2 images + kate
    edit(cfg)
    (work / "config/config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    run(["git", "init", "-q"], work)
    run(["git", "add", "-A"], work)
    run(["git", "commit", "-qm", "test project"], work)
    return work


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return git_project(tmp_path_factory.mktemp("dvc") / "proj")


def test_dvc_tracks_the_whole_config_and_the_fetch_stage_reads_data_mirror():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert {"config/config.yaml": None} in stages["reproduce"]["params"]  # no key list: every key
    assert {"config/config.yaml": ["data_mirror", "manifest"]} in stages["fetch"]["params"]


@pytest.mark.parametrize("mirror_ok", [True, False])
def test_fetch_stage_takes_the_mirror_from_the_config(tmp_path, mirror_ok):
    # DIP_DATA_MIRROR is unset and the machine may be offline: the files can only come from data_mirror.
    mirror = MIRROR if mirror_ok else tmp_path / "empty_mirror"
    mirror.mkdir(exist_ok=True)
    work = git_project(tmp_path / "proj", lambda c: c.update(data_mirror=str(mirror)))
    r = run(["dvc", "repro", "fetch"], work, mirror_env=False, check=mirror_ok)
    log = (work / "results/quick/logs/fetch.log").read_text()
    if mirror_ok:
        assert f"data/raw/fig7/kate.png: fetched from {mirror}/fig7/kate.png" in log, log
        assert tree_hashes(work / "data/raw") == {rel: h for rel, h in tree_hashes(MIRROR).items()
                                                  if rel.startswith(("table1/", "fig7/", "authors_code/"))}
    else:
        assert r.returncode != 0
        assert f"23 file(s) missing from the data mirror {mirror}" in log, log  # 14 images, 9 code files
        assert not (work / "data/raw").exists() or not any((work / "data/raw").rglob("*.png"))


def test_exp_run_switches_profile_and_push_pull_round_trips(project: Path, tmp_path: Path):
    run(["dvc", "exp", "run", "-S", "profile=ci"], project)
    results = project / "results" / "ci"
    # the effect of -S profile=ci, not the value DVC itself wrote to params.yaml: the ci profile's results
    assert (results / "table1.md").exists() and not (project / "results" / "quick").exists()
    assert json.loads((results / "summary.json").read_text())["profile"] == "ci"
    assert set(pd.read_csv(results / "metrics.csv")["profile"]) == {"ci"}
    assert len(list((results / "baselines").glob("*/*/seed*/metrics.json"))) == 6  # a classical fill beside each fit

    shown = run(["dvc", "metrics", "show"], project).stdout
    assert "results/ci/summary.json" in shown and "table1_mean_psnr" in shown
    plots = run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], project)
    assert (tmp_path / "plots" / "index.html").exists(), plots.stdout

    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "local", str(remote)], project)
    run(["git", "add", "-A"], project)
    assert "dvc.lock" in run(["git", "status", "--porcelain"], project).stdout  # not ignored: committed with results
    run(["git", "commit", "-qm", "ci results"], project)
    run(["dvc", "push"], project)
    assert any(remote.rglob("*")), "the remote received nothing"

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    assert not (clone / "data" / "raw").exists()
    run(["dvc", "pull"], clone)
    for sub in ("data/raw", "results/ci/fits", "results/ci/masks", "results/ci/baselines"):
        assert tree_hashes(clone / sub) == tree_hashes(project / sub), sub
    for name in ("metrics.csv", "table1.md", "table1.csv", "figure7.png", "figure7.pdf", "curves.png",
                 "classical_metrics.csv"):
        assert (clone / "results/ci" / name).read_bytes() == (results / name).read_bytes(), name
    status = run(["dvc", "status"], clone).stdout
    assert "up to date" in status.lower() or status.strip() == "", status
