"""tools/gpu/paper_pipeline.sh, the script that runs paper fits through Snakemake on a lent GPU machine,
exercised on the CPU with a cut-down ci profile: a stop request interrupts the running fit, its checkpoint comes
back in pieces, and a later call on a fresh machine (no results/, no .snakemake/) continues it from there.

The profile declares one GPU per fit (as `paper` does), so the script's `--resources gpu=1` runs the fits one
after another, as on the device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from test_workflow import _config_copy

from conftest import MIRROR, ROOT

pytestmark = pytest.mark.pipeline

SCRIPT = ROOT / "tools" / "gpu" / "paper_pipeline.sh"
IMAGES = ["house", "peppers"]


def cut_down(cfg: dict) -> None:
    cfg["profile"] = "ci"
    cfg["tasks"] = {"table1": {**cfg["tasks"]["table1"], "images": IMAGES}}
    ci = cfg["profiles"]["ci"]
    ci["seeds"] = [0]
    ci["checkpoint_every"] = 10
    ci["overrides"]["table1"]["iterations"] = 240  # long enough to be stopped after its first checkpoint
    ci["resources"]["gpus"] = 1


def run_script(work: Path, out: Path, **extra: str) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PROFILE": "ci",
           "DATA": str(MIRROR), "OUT": str(out), "LIMIT": "3600", **extra}
    log = open(out.parent / f"{out.name}.txt", "w")
    return subprocess.Popen(["bash", str(SCRIPT), *(f"table1:{i}:0" for i in IMAGES)], cwd=work, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_stop_brings_back_the_checkpoint_and_a_fresh_machine_resumes_it(tmp_path):
    if not all((MIRROR / "table1" / f"{i}.png").is_file() for i in IMAGES):
        pytest.skip(f"no data mirror at {MIRROR} (set DIP_DATA_MIRROR)")
    work = _config_copy(tmp_path, cut_down)
    first = tmp_path / "call1"
    proc = run_script(work, first)
    try:
        fits = work / "results" / "ci" / "fits" / "table1"
        t0 = time.time()
        while not list(fits.glob("*/seed0.ckpt/checkpoint.pt")):  # a fit has written its first checkpoint
            assert proc.poll() is None, (tmp_path / "call1.txt").read_text()[-3000:]
            assert time.time() - t0 < 600, "no checkpoint written"
            time.sleep(0.2)
        (first / "stop").touch()
        assert proc.wait(timeout=600) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
    console = (tmp_path / "call1.txt").read_text()
    assert "interrupting the running fits" in console, console
    pieces = sorted(first.glob("ckpt__table1__*__0.part*"))
    assert len(pieces) == 1, console  # one fit at a time: exactly one was running, the other not started
    stopped = pieces[0].name.split("__")[2]
    assert f"unfinished, checkpoint brought back: results/ci/fits/table1/{stopped}/seed0" in console
    assert "not started" in console or "done:" in console

    # A fresh machine: nothing of the first call but the pieces it brought back.
    for name in ("results", ".snakemake", "data"):
        subprocess.run(["rm", "-rf", str(work / name)], check=True)
    second = tmp_path / "call2"
    proc = run_script(work, second, RESUME=str(first))
    try:
        assert proc.wait(timeout=900) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
    console = (tmp_path / "call2.txt").read_text()
    assert f"[gpu] resuming table1/{stopped}/seed0" in console, console
    with tarfile.open(second / "records.tar.gz") as tar:
        names = set(tar.getnames())
    for image in IMAGES:
        assert f"results/ci/fits/table1/{image}/seed0/metrics.json" in names, names
        assert f"results/ci/fits/table1/{image}/seed0/curve.csv" in names
    metrics = json.loads((fits / stopped / "seed0" / "metrics.json").read_text())
    assert metrics["iterations"] == 240 and metrics["resumed_from"] > 0
    assert not list(second.glob("ckpt__*"))  # nothing unfinished this time
