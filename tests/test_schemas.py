"""One validation mechanism: the JSON Schemas of the presets, the data manifest and the config, and the one line
(naming the key) that each violation becomes."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from jsonschema.exceptions import best_match

from conftest import ROOT, dip
from dip.data import schemas

CONFIG_SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def _pin(lines: list[str], name: str) -> str:
    (version,) = [m.group(1) for line in lines if (m := re.fullmatch(rf"{name}==(\S+)", line.strip()))]
    return version


def test_jsonschema_is_pinned_alike_in_pyproject_and_environment_yml():
    from importlib.metadata import version

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    pip = next(d["pip"] for d in env if isinstance(d, dict))
    assert _pin(deps, "jsonschema") == _pin(pip, "jsonschema") == version("jsonschema") == "4.26.0"


def _keys(schema: dict, where: str = ""):
    """(dotted name, subschema) of every property the schema defines, at any depth."""
    for key, sub in schema.get("properties", {}).items():
        yield f"{where}{key}", sub
        yield from _keys(sub, f"{where}{key}.")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _keys(extra, f"{where}*.")


@pytest.mark.parametrize("schema", [CONFIG_SCHEMA, *sorted((ROOT / "src/dip/schemas").glob("*.yaml"))],
                         ids=lambda p: p.name)
def test_every_key_has_a_description_and_the_schema_is_valid(schema):
    data = yaml.safe_load(schema.read_text())
    schemas.StrictValidator.check_schema(data)
    defs = data.get("$defs", {})
    keys = list(_keys(data))
    assert len(keys) >= 10
    missing = [k for k, sub in keys if "description" not in sub and "description" not in
               defs.get(sub.get("$ref", "").removeprefix("#/$defs/"), {})]
    assert missing == [], missing


def test_config_schema_defaults_are_valid_values():
    data = yaml.safe_load(CONFIG_SCHEMA.read_text())
    defaults = {k: sub["default"] for k, sub in _keys(data) if "default" in sub}
    assert defaults == {"data_mirror": None, "device": None, "manifest": "config/datasets.yaml", "reference": False,
                        "profiles.*.crop_at": {}, "profiles.*.cuda_graph": "auto"}


@pytest.mark.parametrize("flags, line", [
    (["--set", "reg_noise_std=-0.5"], "dip: error: --reg-noise-std: must be a finite number >= 0, got -0.5"),
    (["--lr", "-1"], "dip: error: --lr: must be a positive finite number, got -1.0"),
    (["--set", "upsample=cubic"], "dip: error: --upsample: must be one of nearest, bilinear, got 'cubic'"),
    (["--set", "iterations=2.5"], "dip: error: --iterations: must be a positive integer, got 2.5"),
    (["--set", "n_down=[]"], "dip: error: preset table1: n_down: must be a non-empty list of channel counts, got []"),
    (["--set", "n_up=[8,0,8]"], "dip: error: preset table1: n_up.1: must be a channel count >= 1 (n_down and n_up "
                                "need at least one channel per scale), got 0"),
    (["--set", "n_skip=[1,1]"], "dip: error: preset table1: n_down, n_up and n_skip must have the same length"),
    (["--set", "colour=1"], "dip: error: override colour: unknown preset key (known: authors_notebook, backtrack_db, description, "),
])
def test_bad_preset_value_is_one_line_naming_the_key(tmp_path, img, mask, flags, line):
    out = tmp_path / "out"
    r = dip("fit", "--image", img, "--mask", mask, "--preset", "table1", "--out", out,
            "--set", "n_down=[8,8,8]", "--set", "n_up=[8,8,8]", "--set", "n_skip=[2,2,2]", *flags)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and r.stderr.startswith(line), r.stderr
    assert not out.exists()


@pytest.mark.parametrize("edit, line", [
    (lambda p: p.pop("lr"), "dip: error: preset table1: missing keys: lr\n"),
    (lambda p: p.update(colour=1), "dip: error: preset table1: unknown key(s) colour (known: authors_notebook, backtrack_db, "),
])
def test_bad_preset_in_a_presets_file_is_named(tmp_path, edit, line):
    presets = yaml.safe_load((ROOT / "src/dip/data/presets.yaml").read_text())
    edit(presets["table1"])
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(presets))
    r = dip("describe", "--preset", "table1", "--presets", tmp_path / "p.yaml")
    assert r.returncode == 2 and r.stderr.startswith(line) and r.stderr.count("\n") == 1, r.stderr


@pytest.mark.parametrize("edit, line", [
    (lambda f: f["kate"].update(sha256="ABC"),
     "datasets.fig7.files.kate.sha256: must be 64 lowercase hex digits, got 'ABC'"),
    (lambda f: f["kate"].update(url="ftp://example.com/kate.png"),
     "datasets.fig7.files.kate.url: must be an https:// URL (http:// only for loopback hosts), "
     "got 'ftp://example.com/kate.png'"),
    (lambda f: f["kate"].update(size=[512]), "datasets.fig7.files.kate.size: must be [width, height] in pixels"),
    (lambda f: f["kate"].update(mode="CMYK!"), "datasets.fig7.files.kate.mode: must be a Pillow mode such as L or RGB"),
    (lambda f: f["kate"].pop("sha256"), "datasets.fig7.files.kate: 'sha256' is a required property"),
    (lambda f: f.update({"..": f.pop("kate")}), "datasets.fig7.files: names must be plain names"),
])
def test_bad_manifest_entry_is_one_line_naming_the_key(tmp_path, edit, line):
    manifest = yaml.safe_load((ROOT / "config/datasets.yaml").read_text())
    edit(manifest["datasets"]["fig7"]["files"])
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(manifest))
    r = dip("fetch", "--manifest", tmp_path / "m.yaml", "--dest", tmp_path / "raw", "--mirror", tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith(f"dip: error: {tmp_path / 'm.yaml'}: {line}") and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "raw").exists()


def test_config_schema_requires_drop_only_for_bernoulli_masks():
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    validator = schemas.StrictValidator(yaml.safe_load(CONFIG_SCHEMA.read_text()))
    assert list(validator.iter_errors(config)) == []
    assert "drop" not in config["tasks"]["fig7_text"]  # a file mask (kate_mask) needs none
    del config["tasks"]["table1"]["drop"]
    error = best_match(validator.iter_errors(config))
    assert (schemas.path_of(error), schemas.problem(error)) == (
        "tasks.table1", "mask: bernoulli needs drop (the fraction of pixels dropped, 0 < drop < 1)")
