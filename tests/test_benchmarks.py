"""The benchmark scripts run and report what docs/performance.md says they report (smoke runs, no timing claims).

They are the ``benchmarks`` package of the checkout (not installed: the wheel holds ``dip`` only), run as
``python -m benchmarks.<script>``; these runs put the checkout on PYTHONPATH and start in a temporary folder, so
that no script depends on the working directory for its inputs or outputs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import MIRROR, checkout_env


def bench(module: str, *args: str, cwd, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m benchmarks.<module> ARGS`` in ``cwd``."""
    return subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=checkout_env())


def test_bench_fit_quick_reports_every_column(tmp_path):
    out = tmp_path / "bench.json"
    r = bench("bench_fit", "--quick", "--threads", "1", "--json", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    rows = {row["mode"]: row for row in data["rows"]}
    assert set(rows) == {"fp32", "bf16-cl"} and all(row["size"] == 64 for row in rows.values())
    assert rows["fp32"]["speedup"] == 1.0  # the reference
    for row in rows.values():
        assert len(row["times_s"]) == 2 and all(t > 0 for t in row["times_s"])
        assert 7.0e9 < row["flops"] < 7.4e9  # the table1 network at 64x64 (FlopCounterMode, forward + backward)
        assert 0 < row["peak_fraction"] and row["maxrss_mb"] > 0
    assert "| 64 | bf16-cl |" in r.stdout and "GEMM peak" in r.stdout


def test_bench_fit_refuses_cuda_only_modes_on_cpu(tmp_path):
    r = bench("bench_fit", "--device", "cpu", "--modes", "tf32-graph", cwd=tmp_path, timeout=120)
    assert r.returncode != 0 and "exist only on CUDA" in r.stderr


def test_profile_iteration_times_and_profiles_a_mode(tmp_path):
    r = bench("profile_iteration", "--size", "64", "--mode", "bf16-cl", "--threads", "1", "--warmup", "0",
              "--iters", "1", "--rows", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "table1 64x64 cpu bf16-cl (bf16 channels_last):" in r.stdout and "ms/iteration" in r.stdout
    assert "Self CPU time total" in r.stdout


def test_ablation_runs_configurations_named_by_mode(tmp_path):
    r = bench("ablation", "--size", "64", "--repeats", "1", "--configs", "fp32", "bf16-cl+PKH", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "| fp32 |" in r.stdout and "| bf16-cl+PKH |" in r.stdout and "1.00x" in r.stdout
    bad = bench("ablation", "--configs", "bf16cl+P", cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and "configuration 'bf16cl+P'" in bad.stderr


@pytest.mark.skipif(not (MIRROR / "table1" / "barbara.png").exists(), reason="needs the data mirror (barbara)")
def test_eval_cost_reports_the_ci_share(tmp_path):
    r = bench("eval_cost", "--profiles", "ci", "--repeats", "2", "--data", str(MIRROR), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (row,) = [line for line in r.stdout.splitlines() if line.startswith("| ci |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "64x64" and cells[6] == "20"  # the ci crop and eval_every
    assert 0 < float(cells[7].rstrip("%")) < 100
