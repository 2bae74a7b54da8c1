"""Named hyperparameter sets (``presets.yaml``) and their validation.

The presets file is data: the CLI and the pipeline read it, overrides replace single keys, and every value is
checked here so a bad flag or config value fails before any work starts.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dip.errors import DipError

_LISTS = ("n_down", "n_up", "n_skip")
_POSITIVE_INT = ("input_depth", "k_down", "k_up", "k_skip", "iterations", "eval_every", "max_backtracks",
                 "es_patience")
_FRACTION = ("ema_weight", "es_alpha")  # in (0, 1)
_POSITIVE_FLOAT = ("lr", "input_scale", "backtrack_db")
_CHOICES = {"input_kind": ("noise", "meshgrid"), "upsample": ("nearest", "bilinear")}
KEYS = frozenset(("description", "reg_noise_std", *_LISTS, *_POSITIVE_INT, *_POSITIVE_FLOAT, *_FRACTION,
                  *_CHOICES))


def load_presets(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """All presets from ``path`` (default: the packaged ``presets.yaml``)."""
    if path is None:
        text = resources.files("dip").joinpath("presets.yaml").read_text()
        where = "dip/presets.yaml"
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
    return data


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
    """Raise DipError for a missing or out-of-range value."""
    missing = sorted(KEYS - {"description"} - p.keys())
    if missing:
        raise DipError(f"preset {name}", f"missing keys: {', '.join(missing)}")
    for key in _POSITIVE_INT:
        v = p[key]
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise DipError(f"--{key.replace('_', '-')}", f"must be a positive integer, got {v!r}")
    for key in _POSITIVE_FLOAT:
        v = p[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise DipError(f"--{key.replace('_', '-')}", f"must be a positive finite number, got {v!r}")
    for key in _FRACTION:
        v = p[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
            raise DipError(f"--{key.replace('_', '-')}", f"must be a number between 0 and 1 (exclusive), got {v!r}")
    v = p["reg_noise_std"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise DipError("--reg-noise-std", f"must be a finite number >= 0, got {v!r}")
    for key, choices in _CHOICES.items():
        if p[key] not in choices:
            raise DipError(f"--{key.replace('_', '-')}", f"must be one of {', '.join(choices)}, got {p[key]!r}")
    lists = [p[k] for k in _LISTS]
    for key, v in zip(_LISTS, lists):
        if not isinstance(v, list) or not v or not all(isinstance(c, int) and c >= 0 for c in v):
            raise DipError(f"preset {name}: {key}", f"must be a non-empty list of channel counts, got {v!r}")
    if len({len(v) for v in lists}) != 1:
        raise DipError(f"preset {name}", "n_down, n_up and n_skip must have the same length")
    if 0 in p["n_down"] or 0 in p["n_up"]:
        raise DipError(f"preset {name}", "n_down and n_up need at least one channel per scale")
