"""Named hyperparameter sets (``presets.yaml``) and their validation.

The presets file is data: the CLI and the pipeline read it, overrides replace single keys, and every value is
checked against the JSON Schema ``dip/data/schemas/presets.schema.yaml`` so a bad flag or config value fails before any
work starts, with one line naming the key.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dip.data import schemas
from dip.errors import DipError

SCHEMA = schemas.load("presets")  # dip/data/schemas/presets.schema.yaml: the one definition of a valid preset
KEYS = frozenset(SCHEMA["properties"])
_LISTS = ("n_down", "n_up", "n_skip")


def load_presets(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """All presets from ``path`` (default: the packaged ``presets.yaml``)."""
    if path is None:
        text = resources.files("dip.data").joinpath("presets.yaml").read_text()
        where = "dip/data/presets.yaml"
    else:
        where = str(path)
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise DipError(path, f"cannot read presets file ({e.strerror})") from None
        except UnicodeDecodeError:
            raise DipError(path, "not a text (YAML) presets file") from None
    try:
        data = yaml.safe_load(text)  # data only: YAML tags that would build Python objects are refused
    except yaml.YAMLError as e:
        raise DipError(where, f"not a plain YAML presets file ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DipError(where, "presets file must map preset names to key: value tables")
    return {name: _inherited(data, name, where, ()) for name in data}


def _inherited(data: dict[str, dict[str, Any]], name: str, where: str, chain: tuple[str, ...]) -> dict[str, Any]:
    """Preset ``name`` with ``extends: PARENT`` resolved: the parent's keys (itself resolved), then its own."""
    own = dict(data[name])
    parent = own.pop("extends", None)
    if parent is None:
        return own
    if parent not in data:
        raise DipError(where, f"preset {name}: extends unknown preset {parent!r}")
    if parent in (*chain, name):
        loop = (*chain, name, parent)
        raise DipError(where, f"preset {loop[0]}: extends forms a cycle ({' -> '.join(loop)})")
    return {**_inherited(data, parent, where, (*chain, name)), **own}


def resolve(name: str, overrides: dict[str, Any] | None = None, path: str | Path | None = None) -> dict[str, Any]:
    """Preset ``name`` with ``overrides`` applied, validated."""
    presets = load_presets(path)
    if name not in presets:
        raise DipError("--preset", f"unknown preset {name!r} (known: {', '.join(sorted(presets))})")
    params = dict(presets[name])
    for key, value in (overrides or {}).items():
        if key not in KEYS:
            raise DipError(f"override {key}", f"unknown preset key (known: {', '.join(sorted(KEYS))})")
        params[key] = value
    validate(params, name)
    return params


def validate(p: dict[str, Any], name: str) -> None:
    """Raise DipError (one line naming the key) unless ``p`` satisfies the preset schema."""
    error = schemas.first_error(p, "presets")
    if error is not None:
        raise DipError(*_describe(error, p, name))
    if len({len(p[k]) for k in _LISTS}) != 1:  # the one rule JSON Schema cannot state
        raise DipError(f"preset {name}", "n_down, n_up and n_skip must have the same length")


def _describe(error: schemas.ValidationError, p: dict[str, Any], name: str) -> tuple[str, str]:
    """(subject, problem) of a schema violation: a flag name for scalar keys, ``preset NAME: key`` for lists."""
    if error.validator == "required":
        return f"preset {name}", f"missing keys: {', '.join(sorted(set(SCHEMA['required']) - p.keys()))}"
    if error.validator == "additionalProperties":
        unknown = ", ".join(sorted(p.keys() - KEYS))
        return f"preset {name}", f"unknown key(s) {unknown} (known: {', '.join(sorted(KEYS))})"
    key = str(error.absolute_path[0])
    if len(error.absolute_path) == 1 and key not in (*_LISTS, "description"):
        return f"--{key.replace('_', '-')}", schemas.problem(error)
    return f"preset {name}: {schemas.path_of(error)}", schemas.problem(error)


def parse_key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` as given to ``--set`` (``dip fit``, ``dip inpaint``, the benchmarks), the value read as YAML
    (``yaml.safe_load``: data only, so tags that would build Python objects are refused). ValueError when the
    text is not of that form."""
    if "=" not in text:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ValueError(f"{key.strip()}: not a plain YAML value ({str(e).splitlines()[0]})") from None
