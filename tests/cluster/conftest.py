"""Session fixture ``slurm_cluster``: a real single-node SLURM cluster (with accounting) for the tests
marked ``slurm``. Started once per session by slurm_up.sh, stopped by slurm_down.sh at the end.

    make slurm-test      # = pytest -m slurm tests/cluster (pyproject's addopts deselect them otherwise)

Skips (with the reason) when not root or when apt-get cannot install the packages; DIP_SLURM_REQUIRED=1
turns those skips into failures (for CI machines that must run them). DIP_SLURM_KEEP=1 keeps the
cluster's directory (configuration, daemon logs) after the session; its path is printed.

After slurm_down.sh the fixture checks that the machine is clean: no daemon it started still running, no
process of the cluster's jobs (slurmstepd, a fit) left, no /etc/slurm/slurm.conf link, no directory (unless
kept). Anything left is an error of the last test's teardown, with the list.
"""

from __future__ import annotations

import os
import sys

import pytest

from .cluster import Background, ClusterUnavailable, SlurmCluster, daemon_pids, leftovers, start, stop


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
        daemons = daemon_pids(cluster.dir)
        stop(cluster, keep=keep)
        left = leftovers(cluster.dir, daemons)
        if not keep and cluster.dir.exists():
            left.append(f"the directory {cluster.dir}")
        if keep:
            print(f"\nslurm_cluster: stopped; kept {cluster.dir}", file=sys.stderr)
        assert len(daemons) == 5, f"slurm_up.sh recorded {sorted(daemons)}, expected 5 daemons"
        assert not left, "slurm_down.sh left the machine unclean:\n  " + "\n  ".join(left)


@pytest.fixture
def spawn():
    """Start a command in the background (cluster.Background): ``bg = spawn(cmd, log_path, cwd=..., env=...)``.
    Whatever is still running when the test ends (a failed assertion) is stopped like Ctrl-C (SIGINT to its
    process group: a Snakemake cancels its SLURM jobs), then SIGKILL after 30 s."""
    started: list[Background] = []

    def start_background(cmd: list[str], log, **kw) -> Background:
        bg = Background(cmd, log, **kw)
        started.append(bg)
        return bg

    yield start_background
    for bg in started:
        if bg.running():
            bg.finish(timeout=0, grace=30)
