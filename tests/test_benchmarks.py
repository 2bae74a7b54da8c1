"""The benchmark scripts run and report what docs/performance.md says they report (smoke runs, no timing claims)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_fit_quick_reports_every_column(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_fit.py"), "--quick", "--threads", "1",
                        "--json", str(out)], capture_output=True, text=True, timeout=600)
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


def test_bench_fit_refuses_cuda_only_modes_on_cpu():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_fit.py"), "--device", "cpu", "--modes",
                        "tf32-graph"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "exist only on CUDA" in r.stderr
