"""Session fixture ``slurm_cluster``: a real single-node SLURM cluster (with accounting) for the tests
marked ``slurm``. Started once per session by slurm_up.sh, stopped by slurm_down.sh at the end.

    make slurm-test      # = pytest -m slurm tests/cluster (pyproject's addopts deselect them otherwise)

Skips (with the reason) when not root or when apt-get cannot install the packages; DIP_SLURM_REQUIRED=1
turns those skips into failures (for CI machines that must run them). DIP_SLURM_KEEP=1 keeps the
cluster's directory (configuration, daemon logs) after the session; its path is printed.
"""

from __future__ import annotations

import os
import sys

import pytest

from .cluster import ClusterUnavailable, SlurmCluster, start, stop


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    required = os.environ.get("DIP_SLURM_REQUIRED") == "1"
    give_up = pytest.fail if required else pytest.skip
    if os.geteuid() != 0:
        give_up(
            "the SLURM test cluster needs root (it installs Debian packages and starts munged, mariadbd, "
            "slurmdbd, slurmctld and slurmd); run `make slurm-test` as root"
        )
    try:
        cluster = start()
    except ClusterUnavailable as e:
        give_up(f"cannot start the SLURM test cluster here: {e}")
    print(f"\nslurm_cluster: up in {cluster.startup_s:.1f}s ({cluster.dir})", file=sys.stderr)
    try:
        yield cluster
    finally:
        keep = os.environ.get("DIP_SLURM_KEEP") == "1"
        stop(cluster, keep=keep)
        if keep:
            print(f"\nslurm_cluster: stopped; kept {cluster.dir}", file=sys.stderr)
