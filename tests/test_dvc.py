"""DVC: `dvc exp run -S profile=ci` switches the profile, metrics/plots show, and push -> fresh clone -> pull
gives byte-identical data and results (with a real local remote directory)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import MIRROR, ROOT

pytestmark = pytest.mark.pipeline
BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "DIP_DATA_MIRROR": str(MIRROR),
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, **kw)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The working tree's tracked files in a new git repository, with a smaller ci task list."""
    if not (MIRROR / "table1").is_dir():
        pytest.skip(f"no data mirror at {MIRROR} (set DIP_DATA_MIRROR)")
    work = tmp_path_factory.mktemp("dvc") / "proj"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (work / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, work / f)
    cfg = yaml.safe_load((work / "config/config.yaml").read_text())
    cfg["tasks"]["table1"]["images"] = ["house", "barbara"]  # keep the test short: 2 images + kate
    (work / "config/config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    run(["git", "init", "-q"], work)
    run(["git", "add", "-A"], work)
    run(["git", "commit", "-qm", "test project"], work)
    return work


def test_exp_run_switches_profile_and_push_pull_round_trips(project: Path, tmp_path: Path):
    run(["dvc", "exp", "run", "-S", "profile=ci"], project)
    assert yaml.safe_load((project / "params.yaml").read_text())["profile"] == "ci"
    results = project / "results" / "ci"
    assert (results / "table1.md").exists() and not (project / "results" / "quick").exists()

    shown = run(["dvc", "metrics", "show"], project).stdout
    assert "results/ci/summary.json" in shown and "table1_mean_psnr" in shown
    plots = run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], project)
    assert (tmp_path / "plots" / "index.html").exists(), plots.stdout

    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "local", str(remote)], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "ci results"], project)
    run(["dvc", "push"], project)
    assert any(remote.rglob("*")), "the remote received nothing"

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    assert not (clone / "data" / "raw").exists()
    run(["dvc", "pull"], clone)
    for sub in ("data/raw", "results/ci/fits", "results/ci/masks"):
        assert tree_hashes(clone / sub) == tree_hashes(project / sub), sub
    for name in ("metrics.csv", "table1.md", "table1.csv", "figure7.png", "figure7.pdf", "curves.png"):
        assert (clone / "results/ci" / name).read_bytes() == (results / name).read_bytes(), name
    status = run(["dvc", "status"], clone).stdout
    assert "up to date" in status.lower() or status.strip() == "", status
