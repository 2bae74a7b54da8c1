"""Honest cost, right-sized requests (issue 20, point 3): each paper fit's time limit comes from the measured rate
of its task and size (config values equal to the committed GPU records) with the stated margin; the cost table
in docs/cluster.md is what `python -m dip.report.cost` makes from the records; the paper profile runs three seeds."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest
import yaml
from test_workflow import _config_copy, snakemake

from conftest import ROOT
from dip.data.manifest import load_manifest
from dip.data.presets import resolve
from dip.errors import DipError
from dip.report import cost

CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
PAPER = CONFIG["profiles"]["paper"]
RECORDS = sorted((ROOT / "docs" / "paper-gpu-run").glob("*/seed*/metrics.json"))


def test_the_configured_rates_are_the_slowest_recorded_fits():
    assert len(RECORDS) >= 10
    assert PAPER["resources"]["seconds_per_iter"] == cost.record_rates(cost.read_records(RECORDS))


def test_the_paper_profile_runs_three_seeds_on_one_gpu_each():
    assert PAPER["seeds"] == [0, 1, 2] and PAPER["resources"]["gpus"] == 1 and PAPER["device"] == "cuda"


@pytest.mark.parametrize("width, height, expected", [
    (512, 512, 0.0466),             # measured
    (256, 256, 0.0357),             # measured
    (1024, 512, 0.0466 * 2),        # larger: the largest measured size below, scaled by pixels
    (384, 384, 0.0357 * 2.25),      # between: the measured size below (256x256), scaled
    (128, 128, 0.0357),             # smaller than every measured size: the smallest's rate, not less
])
def test_rate_of_a_size(width, height, expected):
    assert cost.rate(PAPER["resources"]["seconds_per_iter"], "table1", width, height) == pytest.approx(expected)


def test_a_task_without_a_rate_is_named():
    with pytest.raises(DipError, match="no measured rate for task 'other'"):
        cost.rate(PAPER["resources"]["seconds_per_iter"], "other", 512, 512)


def test_fit_minutes_is_the_stated_formula():
    assert cost.fit_minutes(11000, 0.0466, 2, 3) == math.ceil(11000 * 0.0466 * 2 / 60) + 3 == 21
    assert cost.fit_minutes(1, 0.001, 1, 0) == 1  # a started minute counts


def expected_minutes(task: str, image: str) -> int:
    t = CONFIG["tasks"][task]
    width, height = load_manifest(ROOT / "config" / "datasets.yaml")[t["dataset"]][image]["size"]
    r = PAPER["resources"]
    iterations = resolve(t["preset"], PAPER["overrides"].get(task, {}))["iterations"]
    seconds = iterations * r["seconds_per_iter"][task][f"{width}x{height}"]
    return math.ceil(seconds * r["runtime_margin"] / 60) + r["runtime_extra_min"]


def test_each_paper_fit_asks_for_its_computed_time_limit():
    r = snakemake("-n", "--forceall", "--config", "profile=paper")
    assert r.returncode == 0, r.stderr
    jobs = re.findall(r"rule fit:\n(?:    .*\n)*?    wildcards: task=(\w+), image=(\w+), seed=(\d)\n(?:    .*\n)*?"
                      r"    resources: (.*)\n", r.stdout)
    assert len(jobs) == 36 and {s for *_, s, _ in jobs} == {"0", "1", "2"}
    for task, image, _seed, res in jobs:
        res = dict(kv.split("=", 1) for kv in res.split(", "))
        assert int(res["runtime"]) == expected_minutes(task, image), (task, image, res)
        assert res["gpu"] == "1" and res["mem_mb"] == "8000" and "cpus_per_task" in res
    minutes = {(t, i): int(dict(kv.split("=", 1) for kv in res.split(", "))["runtime"]) for t, i, _, res in jobs}
    assert minutes[("table1", "barbara")] == 21 and minutes[("table1", "house")] == 17
    assert minutes[("fig7_text", "kate")] == 18  # far below the 240 minutes asked before


def test_a_fixed_limit_stays_a_fixed_limit():
    r = snakemake("-n", "--forceall", "--config", "profile=ci")
    assert r.returncode == 0, r.stderr
    assert set(re.findall(r"runtime=(\d+)", r.stdout)) == {str(CONFIG["profiles"]["ci"]["resources"]["runtime_min"])}


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["resources"].update(runtime_min=30),
     "give either runtime_min (minutes) or seconds_per_iter, runtime_margin and runtime_extra_min"),
    (lambda p: p["resources"]["seconds_per_iter"].pop("fig7_text"),
     "config: profiles.paper.resources.seconds_per_iter: no measured rate for task 'fig7_text'"),
    (lambda p: p["resources"]["seconds_per_iter"]["table1"].update({"512": 0.04}),
     "profiles.paper.resources.seconds_per_iter.table1: '512' does not match"),
])
def test_a_bad_time_limit_config_is_one_line(tmp_path, edit, message):
    work = _config_copy(tmp_path, lambda c: edit(c["profiles"]["paper"]))
    r = snakemake("-n", "--config", "profile=paper", cwd=work)
    assert r.returncode != 0
    assert message in r.stdout + r.stderr, (r.stdout + r.stderr)[-2000:]


def test_the_cost_table_in_the_docs_is_made_from_the_records():
    doc = (ROOT / "docs" / "cluster.md").read_text()
    command = re.search(r"^ +(python -m dip\.report\.cost .+)$", doc, re.MULTILINE).group(1)
    made = subprocess.run([sys.executable, *command.split()[1:]], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert made.returncode == 0, made.stderr
    assert made.stdout in doc
    # what it states: GPU-hours of the three seeds, measured rows and projected totals
    assert "**1.94 GPU-hours**" in made.stdout and "| table1 512x512 | 7 | hill/seed0 (1), man/seed0 (1) |" in made.stdout
