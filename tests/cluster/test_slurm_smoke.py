"""Smoke tests on a real (throw-away, single-node) SLURM cluster: plain sbatch, and a small workflow through
Snakemake with the repository's SLURM profile (workflow/profiles/slurm). The pipeline itself on the cluster
(dvc repro, a fit killed at its time limit): test_slurm_pipeline.py. Run as root:

    make slurm-test          # or: .venv/bin/python -m pytest -q -m slurm tests/cluster -p no:cacheprovider

What they prove, and what not: docs/cluster.md ("The test cluster").
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from .cluster import SlurmCluster, run_interruptibly

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
SNAKEMAKE_TIMEOUT = 300  # s; the workflow below takes ~30 s (mostly the plugin's sacct poll intervals)

# Three rules, three SLURM jobs in two rounds: hello and world in parallel, then combine. Every job writes
# the SLURM job id it ran under; world asks for a GPU the way the paper profile's fits do (resources
# gpu=1, see fit_resources() in workflow/rules/common.smk) and gets the cluster's pretend one; combine
# writes its CPU count (the profile's cpus_per_task: threads).
THREADS = min(2, os.cpu_count() or 1)
PIPELINE = f"""
rule all:
    input: "combined.txt"

rule hello:
    output: "parts/hello.txt"
    shell: "echo job=$SLURM_JOB_ID > {{output}}"

rule world:
    output: "parts/world.txt"
    resources: gpu=1
    shell: "echo job=$SLURM_JOB_ID gpu=$CUDA_VISIBLE_DEVICES > {{output}}"

rule combine:
    input: "parts/hello.txt", "parts/world.txt"
    output: "combined.txt"
    threads: {THREADS}
    shell: "cat {{input}} > {{output}}; echo job=$SLURM_JOB_ID cpus=$SLURM_CPUS_PER_TASK >> {{output}}"
"""

def snakemake(cluster: SlurmCluster, workdir: Path, *extra: str) -> tuple[str, list[str]]:
    """Run Snakemake in workdir with the repository's SLURM profile; returns (output, SLURM job ids)."""
    cmd = [
        sys.executable, "-m", "snakemake",
        "--profile", str(PROFILE),
        # the profile's 20 s before the first sacct poll is for real fits; these jobs take a second
        "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-keep-successful-logs",
        *extra,
    ]  # fmt: skip
    res, timed_out = run_interruptibly(cmd, timeout=SNAKEMAKE_TIMEOUT, cwd=workdir, env=cluster.env)
    assert not timed_out, f"snakemake still running after {SNAKEMAKE_TIMEOUT}s:\n{res.stdout}\n{cluster.diagnostics()}"
    assert res.returncode == 0, f"snakemake failed ({res.returncode}):\n{res.stdout}\n{cluster.diagnostics()}"
    return res.stdout, re.findall(r"has been submitted with SLURM jobid (\d+)", res.stdout)


def job_ids_in(path: Path) -> list[str]:
    return re.findall(r"job=(\d+)", path.read_text())


def test_sbatch_job_completes(slurm_cluster: SlurmCluster, tmp_path: Path):
    out = tmp_path / "job.out"
    job = slurm_cluster.sbatch(
        "--output", str(out), "--time", "1", "--wrap", "echo hello from $SLURM_JOB_ID on $SLURMD_NODENAME; srun true"
    )
    states = slurm_cluster.wait_for_jobs([job], timeout=60)
    assert states == {job: "COMPLETED"}, slurm_cluster.diagnostics()
    assert out.read_text().strip() == f"hello from {job} on localhost"
    # the job step (srun) is accounted too
    steps = slurm_cluster.run("sacct", "-n", "-P", "-j", job, "-o", "JobID,State").stdout.split()
    assert f"{job}.0|COMPLETED" in steps, steps


def test_snakemake_runs_every_rule_as_slurm_job(slurm_cluster: SlurmCluster, tmp_path: Path):
    (tmp_path / "Snakefile").write_text(PIPELINE)
    log, submitted = snakemake(slurm_cluster, tmp_path)

    assert len(submitted) == 3, f"expected 3 SLURM submissions (hello, world, combine):\n{log}"
    records = slurm_cluster.sacct(submitted)
    assert {r["id"] for r in records} == set(submitted), records
    assert all(r["state"] == "COMPLETED" and r["exit"] == "0:0" for r in records), records
    # one Snakemake run: one job name (the run's uuid); the comment names the rule
    assert len({r["name"] for r in records}) == 1, records
    assert sorted(r["comment"] for r in records) == ["rule_combine", "rule_hello", "rule_world"], records

    # the outputs exist and were written inside exactly those SLURM jobs
    combined = tmp_path / "combined.txt"
    assert combined.exists(), log
    assert sorted(job_ids_in(combined)) == sorted(submitted), (combined.read_text(), submitted)
    assert f"cpus={THREADS}" in combined.read_text()
    # the GPU request reached SLURM (sbatch --gpus=1) and the job step saw its GPU
    tres = {r["comment"]: r["tres"] for r in records}
    assert "gres/gpu=1" in tres["rule_world"] and "gres/gpu" not in tres["rule_hello"], tres
    assert "gpu=0" in (tmp_path / "parts" / "world.txt").read_text()
    # the plugin's job logs: .snakemake/slurm_logs/rule_<rule>/[<wildcards>/]<slurm job id>.log
    logs = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / ".snakemake" / "slurm_logs").rglob("*.log"))
    expected = [f".snakemake/slurm_logs/rule_{r['comment'][5:]}/{r['id']}.log" for r in records]
    assert logs == sorted(expected), logs
