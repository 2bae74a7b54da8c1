"""The pipeline configuration, ``config/config.yaml``: the one reader used by the report, the regression gate, the
benchmarks and the workflow's helpers (Snakemake itself reads and schema-validates it for the DAG,
``workflow/schemas/config.schema.yaml``).

Every failure is a :class:`~dip.errors.DipError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import yaml

from dip.errors import DipError

TABLE1_TASK = "table1"  # the task whose PSNRs are the paper's Table 1
FIG7_TASK = "fig7_text"  # Figure 7 top (kate, text mask)
PAPER_PROFILE = "paper"  # the only profile compared with the paper as a claim


def read_mapping(p: Path, parse: Callable[[str], Any], syntax_error: type[Exception], fmt: str, missing: str,
                 not_mapping: str) -> dict[str, Any]:
    """Parse a YAML/JSON file that must hold a mapping; every failure is a DipError naming the file."""
    try:
        data = parse(p.read_text())
    except FileNotFoundError:
        raise DipError(p, missing) from None
    except (OSError, UnicodeDecodeError) as e:
        raise DipError(p, f"unreadable ({e})") from None
    except syntax_error as e:
        raise DipError(p, f"not valid {fmt} ({e})") from None
    if not isinstance(data, dict):
        raise DipError(p, not_mapping)
    return data


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """The pipeline configuration as a dict (data only: ``yaml.safe_load``), with the sections every reader
    relies on checked."""
    p = Path(path)
    cfg = read_mapping(p, yaml.safe_load, yaml.YAMLError, "YAML", "no such file", "expected a mapping at the top level")
    for key in ("tasks", "paper", "profiles"):
        if not isinstance(cfg.get(key), dict):
            raise DipError(p, f"missing or invalid section {key!r}")
    if TABLE1_TASK not in cfg["tasks"] or not {"table1_psnr", "tolerance_db"} <= set(cfg["paper"]):
        raise DipError(p, f"needs tasks.{TABLE1_TASK}, paper.table1_psnr and paper.tolerance_db")
    return cfg


def profile_of(cfg: dict[str, Any], profile: str) -> dict[str, Any]:
    """The named profile's section, or a DipError listing the known ones."""
    if profile not in cfg["profiles"]:
        raise DipError("--profile", f"unknown profile {profile!r} (known: {', '.join(cfg['profiles'])})")
    return cfg["profiles"][profile]
