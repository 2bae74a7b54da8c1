"""The environment files agree, and the package installs its command."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import ROOT, TINY, dip, make_image


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line.strip())
        assert m, f"not an exact pin: {line!r}"
        out[m.group(1).lower()] = m.group(2)
    return out


def test_environment_yml_pins_the_same_versions_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = _pins(project["dependencies"] + extras["pipeline"] + extras["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert _pins(pip) == wanted
    assert wanted["torch"] == "2.13.0"


def test_local_profile_reruns_incomplete_jobs():
    # docs/reliability.md: after a hard kill, `make reproduce` needs at most `snakemake --unlock`
    profile = yaml.safe_load((ROOT / "workflow/profiles/default/config.yaml").read_text())
    assert profile["rerun-incomplete"] is True


SUBCOMMANDS = ("fit", "inpaint", "mask", "describe", "fetch", "report", "gate", "figure7", "baseline")


def test_dip_command_is_installed():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "dip"]
    assert ep.value == "dip.cli:main"
    r = dip("--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: dip ")
    listed = re.findall(r"^    ([a-z0-9]+) ", r.stdout, flags=re.M)  # the COMMAND list of --help
    assert sorted(listed) == sorted(SUBCOMMANDS)


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_every_subcommand_answers_help_with_its_own_usage(sub):
    r = dip(sub, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: dip {sub} "), r.stdout[:200]


# ----------------------------------------------------------------- pip install dip-repro is enough for dip inpaint
PIPELINE = {"snakemake", "snakemake-executor-plugin-slurm", "dvc", "pandas", "matplotlib", "tabulate"}


def test_the_pipeline_packages_are_an_extra_that_make_setup_installs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core, extra = set(_pins(project["dependencies"])), set(_pins(project["optional-dependencies"]["pipeline"]))
    assert extra == PIPELINE and not core & PIPELINE
    assert {"torch", "numpy", "pillow", "scikit-image", "jsonschema", "pyyaml", "tqdm"} <= core
    assert "pip install -q -e '.[pipeline,test]'" in (ROOT / "Makefile").read_text()


# Run `dip ARGS...` with the pipeline's packages hidden (as after `pip install dip-repro`: importing one fails, and
# importlib.util.find_spec answers None, as torch's optional probes expect), then print which of them were imported.
BLOCKED_RUN = """
import importlib.abc, sys
BLOCK = {"pandas", "matplotlib", "tabulate", "snakemake", "snakemake_executor_plugin_slurm", "dvc"}
class Hide(importlib.abc.MetaPathFinder):  # every finder answers "not found" for BLOCK, as when not installed
    def __init__(self, inner):
        self.inner = inner
    def find_spec(self, name, path, target=None):
        return None if name.split(".")[0] in BLOCK else self.inner.find_spec(name, path, target)
    def __getattr__(self, attr):
        return getattr(self.inner, attr)
sys.meta_path[:] = [Hide(f) for f in sys.meta_path]
from dip.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as e:
    rc = e.code
print("imported:", sorted(m for m in sys.modules if m.split(".")[0] in BLOCK), "rc:", rc)
"""


def _without_pipeline(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED_RUN, *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("args", [["--help"], ["inpaint", "--help"], ["fit", "--help"]], ids=" ".join)
def test_help_needs_none_of_the_pipeline_packages(args):
    r = _without_pipeline(*args)
    assert r.stdout.rstrip().endswith("imported: [] rc: 0"), r.stdout[-500:] + r.stderr


def test_dip_inpaint_runs_without_the_pipeline_packages(tmp_path):
    img = make_image(tmp_path / "img.png", (24, 24), rgb=True)
    known = np.ones((24, 24), bool)
    known[8:12, 4:20] = False  # a scratch
    Image.fromarray(np.where(known, 255, 0).astype(np.uint8)).save(tmp_path / "mask.png")
    r = _without_pipeline("inpaint", img, tmp_path / "mask.png", "-o", tmp_path / "out.png", *TINY,
                          "--iterations", "3", "--threads", "1", "--no-progress")
    assert r.stdout.rstrip().endswith("imported: [] rc: 0"), r.stdout[-500:] + r.stderr
    assert (tmp_path / "out.png").exists()


def test_a_pipeline_command_without_the_extra_says_how_to_install_it(tmp_path):
    r = _without_pipeline("gate", "--metrics", tmp_path / "m.csv", "--baseline", tmp_path / "b.csv")
    assert "rc: 2" in r.stdout
    assert r.stderr.strip().splitlines()[-1] == ("dip: error: dip gate needs the pipeline's packages (pandas is not "
                                                 "installed): pip install 'dip-repro[pipeline]'")
