"""Site settings the documented way (docs/cluster.md, "Site settings"; issue 20, point 2), without a cluster: a
site profile's default-resources (account, partition) reach every fit planned with the repository's SLURM
workflow profile, and the fit keeps its own CPUs, memory, time limit and GPU. Snakemake replaces a key given in
two profiles instead of merging it, so this holds only while the workflow profile leaves default-resources and
set-resources alone. tests/cluster/test_slurm_site.py shows the same on a real SLURM controller (sacct)."""

from __future__ import annotations

import re

import yaml
from test_workflow import snakemake

from conftest import ROOT

SLURM_PROFILE = ROOT / "workflow" / "profiles" / "slurm"


def test_the_workflow_profile_leaves_the_site_its_resources():
    profile = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert not {"default-resources", "set-resources", "set-threads"} & set(profile), sorted(profile)


def test_a_site_profile_reaches_every_fit_and_the_fit_keeps_its_resources(tmp_path):
    site = tmp_path / "dip-site"
    site.mkdir()
    (site / "config.yaml").write_text(yaml.safe_dump(
        {"default-resources": {"slurm_account": "myproj", "slurm_partition": "gpu"}}))
    r = snakemake("-n", "--forceall", "--nolock", "--profile", str(site), "--workflow-profile", str(SLURM_PROFILE),
                  "--config", "profile=paper")
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert f"Using profiles {site} and workflow specific profile {SLURM_PROFILE}" in out
    fits = re.findall(r"\nrule fit:\n(?:    .*\n)*?    resources: (.*)\n", out)
    assert len(fits) == 36
    for line in fits:
        res = dict(kv.split("=", 1) for kv in line.split(", "))
        assert res["slurm_account"] == "myproj" and res["slurm_partition"] == "gpu", res
        assert res["gpu"] == "1" and res["mem_mb"] == "8000" and int(res["runtime"]) < 60, res
        assert "cpus_per_task" in res, res  # the rule's threads (a dry run on the submit host shows 1)
