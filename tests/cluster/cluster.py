"""The throw-away SLURM test cluster (slurm_up.sh / slurm_down.sh beside this file), from Python.

    cluster = start()            # root only; raises ClusterUnavailable (not root, apt cannot install)
    cluster.sbatch("--wrap", "true")
    stop(cluster)

No pytest in here: tests/cluster/conftest.py wraps it in the session fixture ``slurm_cluster``.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
UP = HERE / "slurm_up.sh"
DOWN = HERE / "slurm_down.sh"
EXIT_NOT_ROOT = 77  # slurm_up.sh's exit codes that mean "cannot run here" rather than "broken"
EXIT_NO_PACKAGES = 78
# Variables a SLURM job exports; inherited by a client they would point it at the wrong job/cluster.
_JOB_VARS = ("SLURM_JOB_ID", "SLURM_JOBID", "SLURM_CLUSTER_NAME", "SLURM_CONF")

FINAL_STATES = {
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
    "PREEMPTED", "BOOT_FAIL", "DEADLINE",
}  # fmt: skip


class ClusterUnavailable(Exception):
    """The cluster cannot be started on this machine (not root, or the packages cannot be installed)."""


@dataclass(frozen=True)
class SlurmCluster:
    """A running test cluster: its directory, and the environment that points clients at it."""

    dir: Path  # everything of the cluster: etc/ (slurm.conf), log/, pids/, state/, mysql/, munge/
    vars: dict[str, str]  # what slurm_up.sh exported: SLURM_CONF, DIP_SLURM_DIR, DIP_SLURM_CLUSTER, ...
    startup_s: float  # how long slurm_up.sh took
    env: dict[str, str] = field(repr=False)  # os.environ + vars: pass to subprocess.run(env=...)

    @property
    def conf(self) -> Path:
        return Path(self.vars["SLURM_CONF"])

    @property
    def name(self) -> str:
        return self.vars["DIP_SLURM_CLUSTER"]

    @property
    def partition(self) -> str:
        return self.vars["DIP_SLURM_PARTITION"]

    @property
    def log_dir(self) -> Path:
        return self.dir / "log"

    def run(self, *cmd: str, check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        """Run a command (sbatch, sacct, sinfo, ...) against this cluster; text output captured."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        p = subprocess.run(list(cmd), env=self.env, timeout=timeout, **kw)
        if check and p.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
        return p

    def sbatch(self, *args: str) -> str:
        """Submit a batch job; returns its job id."""
        return self.run("sbatch", "--parsable", *args).stdout.strip().split(";")[0]

    def sacct(self, job_ids: list[str] | None = None, name: str | None = None) -> list[dict[str, str]]:
        """Accounting records (main jobs only) of the given jobs, or of all jobs named ``name``: dicts with
        id, name, state, exit, tres (allocated: cpu=..,gres/gpu=..) and comment."""
        cmd = ["sacct", "-X", "-n", "-P", "-S", "now-1days", "-o", "JobIDRaw,JobName,State,ExitCode,AllocTRES,Comment"]
        if job_ids:
            cmd += ["-j", ",".join(job_ids)]
        if name:
            cmd += ["--name", name]
        rows = []
        for line in self.run(*cmd).stdout.splitlines():
            jobid, jobname, state, exitcode, tres, comment = line.split("|", 5)
            # state: "CANCELLED by 0" -> "CANCELLED"; tres: "billing=1,cpu=1,gres/gpu=1,node=1"
            rows.append(
                dict(id=jobid, name=jobname, state=state.split()[0], exit=exitcode, tres=tres, comment=comment)
            )
        return rows

    def wait_for_jobs(self, job_ids: list[str], timeout: float = 60) -> dict[str, str]:
        """Poll sacct until every job is in a final state (or timeout); returns {job id: state}."""
        end = time.monotonic() + timeout
        while True:
            states = {r["id"]: r["state"] for r in self.sacct(job_ids)}
            if all(states.get(j) in FINAL_STATES for j in job_ids) or time.monotonic() > end:
                return {j: states.get(j, "MISSING") for j in job_ids}
            time.sleep(0.3)

    def diagnostics(self, lines: int = 20) -> str:
        """Node state, queue and the tail of every daemon log: for assertion messages."""
        parts = []
        for cmd in (["sinfo", "-N", "-l"], ["squeue"], ["sacct", "-X", "-S", "now-1days"]):
            p = self.run(*cmd, check=False, timeout=20)
            parts.append(f"$ {shlex.join(cmd)}\n{p.stdout}{p.stderr}")
        for log in sorted(self.log_dir.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"---- {log}\n" + "\n".join(tail))
        return "\n".join(parts)


def client_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _JOB_VARS}
    env.update(extra)
    return env


def start(dir: Path | None = None, timeout: float = 600) -> SlurmCluster:
    """Run slurm_up.sh (installing the packages if needed) and return the running cluster."""
    t0 = time.monotonic()
    cmd = [str(UP)] + ([str(dir)] if dir else [])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    if p.returncode in (EXIT_NOT_ROOT, EXIT_NO_PACKAGES):
        raise ClusterUnavailable(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}")
    if p.returncode != 0:
        raise RuntimeError(f"slurm_up.sh failed ({p.returncode}) after {elapsed:.1f}s:\n{p.stderr}")
    vars_ = {}
    for line in p.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            k, v = line[len("export ") :].split("=", 1)
            vars_[k] = v
    return SlurmCluster(dir=Path(vars_["DIP_SLURM_DIR"]), vars=vars_, startup_s=elapsed, env=client_env(vars_))


def stop(cluster: SlurmCluster, keep: bool = False, timeout: float = 120) -> None:
    """Run slurm_down.sh: stop the cluster's daemons; delete its directory unless keep."""
    cmd = [str(DOWN)] + (["--keep"] if keep else []) + [str(cluster.dir)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise RuntimeError(f"slurm_down.sh failed ({p.returncode}):\n{p.stderr}")


class Background:
    """A command running in the background in its own process group, its output (stdout and stderr) going to
    a file, so that a test can act on the cluster while it runs (scancel, scontrol) and read its output.

        bg = Background(cmd, log=tmp/"out.txt", cwd=..., env=...)
        ...
        rc, timed_out = bg.finish(timeout=300)
    """

    def __init__(self, cmd: list[str], log: Path, **kw):
        self.cmd, self.log = cmd, Path(log)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, **kw
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def running(self) -> bool:
        return self.proc.poll() is None

    def finish(self, timeout: float, grace: float = 30) -> tuple[int, bool]:
        """Wait for the command; after ``timeout`` s stop it the way a user would (SIGINT to its whole process
        group: a Snakemake waiting on SLURM jobs ignores SIGTERM but cancels its jobs and exits on SIGINT),
        SIGKILL after ``grace`` s more. Returns (exit status, timed_out)."""
        try:
            return self.proc.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGINT)
            try:
                return self.proc.wait(timeout=grace), True
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                return self.proc.wait(), True

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass


def run_interruptibly(
    cmd: list[str], timeout: float, grace: float = 30, **kw
) -> tuple[subprocess.CompletedProcess, bool]:
    """Run cmd to its end (or ``timeout``, then stop it as Background.finish does). Returns (result with the
    output in .stdout, timed_out)."""
    with tempfile.TemporaryDirectory(prefix="dip-bg-") as tmp:
        bg = Background(cmd, Path(tmp) / "out.txt", **kw)
        rc, timed_out = bg.finish(timeout, grace)
        return subprocess.CompletedProcess(cmd, rc, bg.output(), ""), timed_out


def daemon_pids(cluster_dir: Path) -> dict[str, int]:
    """{daemon name: pid} as slurm_up.sh recorded them in DIR/pids/."""
    pids = {}
    for f in sorted((Path(cluster_dir) / "pids").glob("*.pid")):
        try:
            pids[f.stem] = int(f.read_text().strip())
        except (OSError, ValueError):
            pass
    return pids


def leftovers(cluster_dir: Path, daemons: dict[str, int]) -> list[str]:
    """What of the cluster in cluster_dir is still on this machine: recorded daemons still alive under their
    own name, processes that were started with its SLURM_CONF or DIP_SLURM_DIR in their environment (a
    slurmstepd, a job's processes, a client), the /etc/slurm/slurm.conf link into it, the directory itself."""
    found = []
    for name, pid in daemons.items():
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm == name:
            found.append(f"daemon {name} (pid {pid})")
    marks = (f"SLURM_CONF={cluster_dir}/etc/slurm.conf".encode(), f"DIP_SLURM_DIR={cluster_dir}".encode())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if any(m in env for m in marks):
            found.append(f"process {proc.name}: {cmdline[:120]}")
    link = Path("/etc/slurm/slurm.conf")
    if link.is_symlink() and os.readlink(link).startswith(str(cluster_dir) + "/"):
        found.append(f"the link {link} -> {os.readlink(link)}")
    return found
