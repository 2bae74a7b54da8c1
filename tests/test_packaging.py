"""The environment files agree, and the package installs its command."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from conftest import ROOT, dip


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line.strip())
        assert m, f"not an exact pin: {line!r}"
        out[m.group(1).lower()] = m.group(2)
    return out


def test_environment_yml_pins_the_same_versions_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["test"])
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


SUBCOMMANDS = ("fit", "inpaint", "mask", "describe", "fetch", "report", "gate", "figure7")


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
