"""Site settings the documented way (docs/cluster.md, "Site settings"), on the test cluster: a site profile whose
default-resources name an account and a partition, given with --profile beside --workflow-profile
workflow/profiles/slurm. The cluster gets an account for root and a second partition that is not the default,
so that sacct can only show them if they reached sbatch. One fit of a ci subset that asks for what a paper fit
asks for (its threads as CPUs, its memory, a time limit computed from a measured rate, one GPU) runs as a SLURM
job; sacct shows the account, the partition, the CPUs, the memory, the GPU and the time limit.

    make slurm-test      # or: pytest -q -m slurm tests/cluster -k site
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from dip.report import cost

from .cluster import SlurmCluster
from .test_slurm_pipeline import (
    FAST_POLL_ARGS,
    PROFILE,
    env_for,
    finish,
    fit_of,
    linked_copy,
    needs_mirror,
    submitted,
    subset_config,
)

pytestmark = pytest.mark.slurm

ACCOUNT = "dipsite"  # made for the test (sacctmgr): the plugin checks a given account against sacctmgr
PARTITION = "dipgpu"  # a second partition, not the default one
THREADS = min(2, os.cpu_count() or 1)
MEM_MB = 1234  # a value no default produces
# 20 iterations: with two threads on a busy two-core machine an iteration may take a second (OpenMP threads
# waiting for each other), so the fit stays short. A pretend rate of 6 s per iteration: 20 x 6 s x 2 = 4 min, + 3.
ITERATIONS = 20
RATE = {"table1": {"64x64": 6.0}}


@pytest.fixture
def site(slurm_cluster: SlurmCluster):
    """The account (root may use it) and the partition, removed again after the test."""
    c = slurm_cluster
    c.run("sacctmgr", "-i", "add", "account", ACCOUNT, f"cluster={c.name}")
    c.run("sacctmgr", "-i", "add", "user", "root", f"account={ACCOUNT}", f"cluster={c.name}")
    node = c.run("sinfo", "-h", "-N", "-o", "%N").stdout.split()[0]
    c.run("scontrol", "create", f"PartitionName={PARTITION}", f"Nodes={node}", "Default=NO", "MaxTime=INFINITE",
          "State=UP")
    try:
        yield c
    finally:
        c.run("scontrol", "delete", f"PartitionName={PARTITION}", check=False)
        c.run("sacctmgr", "-i", "delete", "user", "root", f"account={ACCOUNT}", check=False)
        c.run("sacctmgr", "-i", "delete", "account", ACCOUNT, check=False)


def paper_like(cfg: dict) -> dict:
    """The ci profile asking the scheduler for what the paper profile asks for (GPU, measured-rate limit)."""
    ci = cfg["profiles"]["ci"]
    ci["threads"] = THREADS
    ci["resources"] = {"mem_mb": MEM_MB, "gpus": 1, "seconds_per_iter": RATE, "runtime_margin": 2,
                       "runtime_extra_min": 3}
    return cfg


def test_site_profile_reaches_the_job_and_the_fit_keeps_its_resources(site: SlurmCluster, tmp_path: Path, spawn):
    needs_mirror({"table1": ["house"]})
    cfg = paper_like(subset_config({"table1": ["house"]}, iterations=ITERATIONS))
    work = linked_copy(tmp_path / "slurm", cfg)
    site_profile = tmp_path / "dip-site"
    site_profile.mkdir()
    (site_profile / "config.yaml").write_text(yaml.safe_dump(
        {"default-resources": {"slurm_account": ACCOUNT, "slurm_partition": PARTITION}}))
    target = "results/ci/fits/table1/house/seed0/metrics.json"
    cmd = [sys.executable, "-m", "snakemake", "--profile", str(site_profile), "--workflow-profile", str(PROFILE),
           *FAST_POLL_ARGS, "--config", "profile=ci", "--", target]  # fmt: skip
    log = finish(spawn(cmd, tmp_path / "snakemake.out", cwd=work, env=env_for(site)), "snakemake (site)", site)

    jobs = submitted(log)
    assert len(jobs) == 1, log[-4000:]
    fields = "JobIDRaw,State,Account,Partition,AllocTRES,ReqTRES,Timelimit,Comment%80"
    row = site.run("sacct", "-X", "-n", "-P", "-j", jobs[0], "-o", fields).stdout.strip().split("|")
    got = dict(zip(fields.replace("%80", "").split(","), row))
    assert fit_of({"comment": got["Comment"]}) == ("rule_fit", "table1_house_0"), got
    assert got["State"] == "COMPLETED", (got, site.diagnostics())
    # the site profile's account and partition reached sbatch (neither is what SLURM picks by itself)
    assert (got["Account"], got["Partition"]) == (ACCOUNT, PARTITION), got
    # ... and the fit kept what it asks for itself: its CPUs, its memory, one GPU and its computed time limit
    tres = dict(kv.split("=", 1) for kv in got["AllocTRES"].split(","))
    assert tres["cpu"] == str(THREADS) and tres["gres/gpu"] == "1", tres
    # memory as requested (this cluster does not count memory as a consumable resource, so allocates none)
    assert dict(kv.split("=", 1) for kv in got["ReqTRES"].split(","))["mem"] == f"{MEM_MB}M", got
    minutes = cost.fit_minutes(ITERATIONS, RATE["table1"]["64x64"], 2, 3)
    assert minutes == 7 and got["Timelimit"] == f"00:{minutes:02d}:00", got
    # the fit ran with those threads, on the device its first log line names
    metrics = json.loads((work / target).read_text())
    assert metrics["threads"] == THREADS and metrics["device"] == "cpu"
    first = (work / "results/ci/logs/fit/table1_house_seed0.log").read_text().splitlines()[0]
    assert first.startswith(f"[dip] device cpu, precision fp32, {THREADS} thread"), first
