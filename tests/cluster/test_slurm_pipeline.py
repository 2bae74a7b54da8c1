"""The pipeline itself on the test cluster (tests/cluster/slurm_up.sh), each run checked against the same
work done locally, at the same time, on this machine, by the same code:

- test_dvc_repro_on_slurm_equals_a_local_run: `dvc exp run -S profile=ci -S snakemake_profile=<slurm>
  -S reference=true` in a git copy of the project with a three-fit subset of the ci profile, the authors' code
  beside ours. Every fit, ours and the reference's, and the classical fill beside each of ours (rule baseline)
  is its own SLURM job (sacct: COMPLETED), the local rules stay local, `dvc metrics show` reads the result, and the numbers are exactly
  those of the same subset run with the local profile (metrics.csv but for its timing columns,
  summary.json, every output.png byte for byte). The regression gate passes too.
- test_fit_killed_at_time_limit_is_retried_and_resumes: one longer fit whose job slurmctld kills at its time
  limit (SIGTERM, then SIGKILL): the fit saves a checkpoint on SIGTERM, the plugin sees TIMEOUT through
  sacct, Snakemake (profile `retries`) submits it again, the second job resumes from that checkpoint, and
  the result is bit for bit that of an uninterrupted local run.

What they prove, and what not: docs/cluster.md ("The test cluster").
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from .cluster import Background, SlurmCluster

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
LOCAL_PROFILE = ROOT / "workflow" / "profiles" / "default"
MIRROR = Path(os.environ.get("DIP_DATA_MIRROR") or ROOT.parent / "shared" / "data")
TIMEOUT = 300  # s for one Snakemake or DVC run; each takes 45-120 s here, mostly the plugin's poll intervals

# The subset: seed 0 of two table1 images and kate (3 fits). barbara and kate because `dvc repro` builds the
# whole DAG (`all`), and Figure 7 needs exactly those two.
SUBSET = {"table1": ["barbara", "house"], "fig7_text": ["kate"]}
# metrics.csv columns that measure time: the only ones allowed to differ between two runs of the same fit
TIMING_COLUMNS = {"seconds_per_iter", "wall_seconds"}
TIMING_SUMMARY = {"total_wall_seconds", "mean_seconds_per_iter"}
# Status checks: the first `sacct` poll 2 s after a submission (the profile's 20 s is for real fits); job
# logs kept. As profile keys and as the same options on the command line.
FAST_POLL = {"slurm-init-seconds-before-status-checks": 2, "slurm-keep-successful-logs": True}
FAST_POLL_ARGS = ["--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs"]


def needs_mirror(images: dict[str, list[str]]) -> None:
    datasets = {"table1": "table1", "fig7_text": "fig7"}
    if not all((MIRROR / datasets[t] / f"{i}.png").is_file() for t, ims in images.items() for i in ims):
        give_up = pytest.fail if os.environ.get("DIP_SLURM_REQUIRED") == "1" else pytest.skip
        give_up(f"no data mirror at {MIRROR} (set DIP_DATA_MIRROR)")


def subset_config(images: dict[str, list[str]], iterations: int | None = None, checkpoint_every: int | None = None):
    """config/config.yaml cut down to these images of these tasks, seed 0 of the ci profile."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["tasks"] = {t: {**cfg["tasks"][t], "images": ims} for t, ims in images.items()}
    ci = cfg["profiles"]["ci"]
    ci["seeds"] = [0]
    if iterations is not None:
        for task in images:
            ci["overrides"][task]["iterations"] = iterations
    if checkpoint_every is not None:
        ci["checkpoint_every"] = checkpoint_every
    return cfg


def linked_copy(work: Path, cfg: dict) -> Path:
    """A working copy for Snakemake: code symlinked to this checkout, its own config/, data/ and results/."""
    work.mkdir(parents=True)
    for name in ("Snakefile", "profiles", "workflow", "src"):
        (work / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "config", work / "config")
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return work


def git_copy(work: Path, cfg: dict, profile: dict) -> Path:
    """The working tree's files (tracked and untracked, not ignored) in a new git repository, as
    tests/test_dvc.py makes it, with cfg as config, the baseline cut to cfg's rows, and a Snakemake profile
    in slurm-test-profile/."""
    work.mkdir(parents=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()  # fmt: skip
    for f in files:
        if (ROOT / f).is_file():
            (work / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, work / f)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    base = work / "tests" / "baseline" / "ci_metrics.csv"
    with open(base, newline="") as f:
        rows = list(csv.DictReader(f))
    keep = [r for r in rows if r["seed"] == "0" and r["image"] in cfg["tasks"].get(r["task"], {}).get("images", [])]
    with open(base, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(keep)
    (work / "slurm-test-profile").mkdir()
    (work / "slurm-test-profile" / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "test project"]):
        subprocess.run(cmd, cwd=work, env=git_env(), check=True, capture_output=True)
    return work


def git_env() -> dict[str, str]:
    return {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip


def env_for(cluster: SlurmCluster) -> dict[str, str]:
    """The cluster's client environment, with this venv first on PATH (dvc, snakemake, python) and the data
    mirror; SLURM jobs inherit it (sbatch exports the submitting environment)."""
    return {**cluster.env, **{k: v for k, v in git_env().items() if k.startswith("GIT_")},
            "PATH": f"{BIN}:{cluster.env['PATH']}", "DIP_DATA_MIRROR": str(MIRROR), "PYTHONUNBUFFERED": "1",
            "DVC_NO_ANALYTICS": "1"}  # fmt: skip


def local_run(spawn, work: Path, env: dict[str, str], *targets: str, reference: bool = False) -> Background:
    """The same work with the local profile on one core, in the background (the reference)."""
    cmd = [sys.executable, "-m", "snakemake", "--workflow-profile", str(LOCAL_PROFILE), "--cores", "1",
           "--config", "profile=ci", f"reference={reference}", "--", *targets]  # fmt: skip
    return spawn(cmd, work / "snakemake.out", cwd=work, env=env)


def finish(run: Background, what: str, cluster: SlurmCluster, timeout: float = TIMEOUT) -> str:
    rc, timed_out = run.finish(timeout)
    out = run.output()
    assert not timed_out, f"{what} still running after {timeout}s:\n{out[-6000:]}\n{cluster.diagnostics()}"
    assert rc == 0, f"{what} failed ({rc}):\n{out[-6000:]}\n{cluster.diagnostics()}"
    return out


def submitted(log: str) -> list[str]:
    return re.findall(r"has been submitted with SLURM jobid (\d+)", log)


def fit_of(record: dict[str, str]) -> tuple[str, str]:
    """sacct comment 'rule_fit_wildcards_table1_house_0' -> ('rule_fit', 'table1_house_0')."""
    rule, _, wildcards = record["comment"].partition("_wildcards_")
    return rule, wildcards


def metrics_rows(path: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    with open(path, newline="") as f:
        return {(r["task"], r["image"], r["seed"]): r for r in csv.DictReader(f)}


def find_key(tree, key: str):
    """The value under ``key`` anywhere in nested dicts (dvc's --json nests by revision and file)."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        for v in tree.values():
            found = find_key(v, key)
            if found is not None:
                return found
    return None


def without(d: dict, keys: set[str]) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def test_dvc_repro_on_slurm_equals_a_local_run(slurm_cluster: SlurmCluster, tmp_path: Path, spawn):
    needs_mirror(SUBSET)
    cfg = subset_config(SUBSET)
    # A copy of the repository's SLURM profile with a quick first status check: `dvc repro` passes Snakemake
    # one --workflow-profile (params.yaml: snakemake_profile), so the test's poll interval has to live in a profile.
    profile = {**yaml.safe_load((PROFILE / "config.yaml").read_text()), **FAST_POLL}
    proj = git_copy(tmp_path / "dvc", cfg, profile)
    env = env_for(slurm_cluster)
    # target `all`, like dvc's stage; the authors' code beside ours in both runs
    reference = local_run(spawn, linked_copy(tmp_path / "local", cfg), env, reference=True)

    t0 = time.monotonic()
    dvc = spawn(["dvc", "exp", "run", "-S", "profile=ci", "-S", "snakemake_profile=slurm-test-profile",
                 "-S", "reference=true"], tmp_path / "dvc.out", cwd=proj, env=env)  # fmt: skip
    log = finish(dvc, "dvc exp run on SLURM", slurm_cluster)
    print(f"dvc exp run on SLURM: {time.monotonic() - t0:.0f}s")
    finish(reference, "the local reference run", slurm_cluster)

    # DVC ran the reproduce stage with the SLURM profile, and that stage sent exactly the fits and baselines to SLURM
    params = yaml.safe_load((proj / "params.yaml").read_text())
    assert params == {"profile": "ci", "snakemake_profile": "slurm-test-profile", "reference": True}, params
    lock = yaml.safe_load((proj / "dvc.lock").read_text())
    assert lock["stages"]["reproduce"]["cmd"] == (
        "snakemake --cores all --workflow-profile slurm-test-profile --config profile=ci reference=true"
    ), lock["stages"]["reproduce"]
    jobs = submitted(log)
    records = slurm_cluster.sacct(jobs)
    expected = sorted(f"{t}_{i}_0" for t, ims in SUBSET.items() for i in ims)
    want = sorted((rule, w) for rule in ("rule_fit", "rule_reference_fit", "rule_baseline") for w in expected)
    assert sorted(fit_of(r) for r in records) == want, f"{records}\n{log[-4000:]}"
    assert [r["state"] for r in records] == ["COMPLETED"] * len(want), records

    # dvc sees the results
    shown = subprocess.run(["dvc", "metrics", "show", "--json"], cwd=proj, env=env, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    summary = json.loads((proj / "results" / "ci" / "summary.json").read_text())
    shown_metrics = find_key(json.loads(shown.stdout), "results/ci/summary.json")
    shown_metrics = shown_metrics.get("data", shown_metrics) if isinstance(shown_metrics, dict) else None
    # (dvc leaves out null values: table1_mean_delta_vs_paper is null outside the paper profile)
    assert shown_metrics == {k: v for k, v in summary.items() if v is not None}, shown.stdout
    assert summary["n_fits"] == len(expected), summary
    status = subprocess.run(["dvc", "status"], cwd=proj, env=env, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and "up to date" in status.stdout.lower(), status.stdout + status.stderr

    # the numbers are exactly the local run's: same machine, same code, same threads (1)
    slurm_res, local_res = proj / "results" / "ci", tmp_path / "local" / "results" / "ci"
    slurm_rows, local_rows = metrics_rows(slurm_res / "metrics.csv"), metrics_rows(local_res / "metrics.csv")
    assert sorted(slurm_rows) == sorted(local_rows) and len(slurm_rows) == len(expected), (slurm_rows, local_rows)
    for key, row in slurm_rows.items():
        assert without(row, TIMING_COLUMNS) == without(local_rows[key], TIMING_COLUMNS), key
    local_summary = json.loads((local_res / "summary.json").read_text())
    assert without(summary, TIMING_SUMMARY) == without(local_summary, TIMING_SUMMARY)
    for task, image, seed in slurm_rows:
        for fit in (Path("fits", task, image, f"seed{seed}"), Path("reference", task, image, f"seed{seed}")):
            for name in ("output.png", "curve.csv"):
                assert (slurm_res / fit / name).read_bytes() == (local_res / fit / name).read_bytes(), fit / name
        fill = Path("baselines", task, image, f"seed{seed}", "output.png")
        assert (slurm_res / fill).read_bytes() == (local_res / fill).read_bytes(), fill
    # the comparison with the authors' code: one f(z) and one shown row per fit (one seed: too few for a verdict)
    parity = (slurm_res / "parity.csv").read_text()
    assert parity == (local_res / "parity.csv").read_text()
    assert len(parity.splitlines()) == 1 + 2 * len(expected) and "too few seeds" in parity

    # and the regression gate (against tests/baseline/ci_metrics.csv, cut to these rows) passes
    gate = subprocess.run(
        [sys.executable, "-m", "dip", "compare", "--metrics", "results/ci/metrics.csv",
         "--config", "config/config.yaml"],
        cwd=proj, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert gate.returncode == 0, f"regression gate failed on the SLURM run:\n{gate.stdout}{gate.stderr}"


# The killed fit: house, seed 0, with more iterations than ci's 200, so that it is still running when
# slurmctld enforces the time limit: it checks limits every 30 s, so a job may run up to ~31 s past it.
# ~2400 iterations take 40-50 s on one core of this machine.
KILL_ITERATIONS = 2400
KILL_CHECKPOINT_EVERY = 100


def test_fit_killed_at_time_limit_is_retried_and_resumes(slurm_cluster: SlurmCluster, tmp_path: Path, spawn):
    needs_mirror({"table1": ["house"]})
    cfg = subset_config({"table1": ["house"]}, iterations=KILL_ITERATIONS, checkpoint_every=KILL_CHECKPOINT_EVERY)
    work = linked_copy(tmp_path / "slurm", cfg)
    env = env_for(slurm_cluster)
    fit = Path("results", "ci", "fits", "table1", "house", "seed0")
    target = str(fit / "metrics.json")
    reference = local_run(spawn, linked_copy(tmp_path / "local", cfg), env, target)  # uninterrupted

    cmd = [sys.executable, "-m", "snakemake", "--workflow-profile", str(PROFILE), *FAST_POLL_ARGS,
           "--config", "profile=ci", "--", target]  # fmt: skip
    run = spawn(cmd, tmp_path / "snakemake.out", cwd=work, env=env)

    # Once the fit has written its first checkpoint, its time limit becomes 0: slurmctld kills the job at
    # its next time-limit check (SIGCONT+SIGTERM to every process of the job, SIGKILL KillWait=5 s later).
    ckpt = work / fit.with_name("seed0.ckpt") / "checkpoint.pt"
    end = time.monotonic() + 120
    while not ckpt.exists():
        assert run.running(), f"snakemake ended before the fit wrote a checkpoint:\n{run.output()[-6000:]}"
        assert time.monotonic() < end, (
            f"no checkpoint after 120 s:\n{run.output()[-6000:]}\n{slurm_cluster.diagnostics()}"
        )
        time.sleep(0.2)
    first = submitted(run.output())
    assert len(first) == 1, run.output()
    slurm_cluster.run("scontrol", "update", f"JobId={first[0]}", "TimeLimit=0")
    state = slurm_cluster.wait_for_jobs(first, timeout=90)[first[0]]
    # the fit's log of this first attempt, before the retry truncates it (the retry is submitted only at
    # Snakemake's next status check, seconds later)
    first_log = (work / "results" / "ci" / "logs" / "fit" / "table1_house_seed0.log").read_text()
    assert state == "TIMEOUT", (
        f"the first job ended {state}, not TIMEOUT (if COMPLETED: the fit finished before slurmctld enforced "
        f"the limit; raise KILL_ITERATIONS):\n{first_log[-2000:]}\n{slurm_cluster.diagnostics()}"
    )
    stopped = re.search(r"stopped by SIGTERM at iteration (\d+); checkpoint saved", first_log)
    assert stopped, f"the fit did not save a checkpoint on SIGTERM:\n{first_log[-3000:]}"

    log = finish(run, "snakemake (killed fit)", slurm_cluster)
    finish(reference, "the uninterrupted local fit", slurm_cluster)

    # Snakemake saw the TIMEOUT through sacct and submitted the fit once more (profile: retries); it completed
    jobs = submitted(log)
    records = slurm_cluster.sacct(jobs)
    assert [(r["id"], r["state"]) for r in records] == [(jobs[0], "TIMEOUT"), (jobs[1], "COMPLETED")], records
    assert all(fit_of(r) == ("rule_fit", "table1_house_0") for r in records), records
    # the second job resumed from the checkpoint the first one saved on SIGTERM, and finished the fit
    metrics = json.loads((work / fit / "metrics.json").read_text())
    ref = json.loads((tmp_path / "local" / fit / "metrics.json").read_text())
    assert metrics["resumed_from"] == int(stopped.group(1)), (metrics["resumed_from"], stopped.group(0))
    assert 0 < metrics["resumed_from"] < KILL_ITERATIONS and ref["resumed_from"] is None
    assert "resumed from" in (work / "results" / "ci" / "logs" / "fit" / "table1_house_seed0.log").read_text()
    assert not (work / fit.with_name("seed0.ckpt")).exists(), "the checkpoint outlived the finished fit"
    # ... and its result is bit for bit that of the uninterrupted run
    for name in ("output.png", "curve.csv"):
        assert (work / fit / name).read_bytes() == (tmp_path / "local" / fit / name).read_bytes(), name
    same = ("psnr", "ssim", "psnr_best", "psnr_best_iter", "psnr_masked", "iterations", "backtracks")
    assert {k: metrics[k] for k in same} == {k: ref[k] for k in same}
    assert metrics["iterations"] == KILL_ITERATIONS
