"""The pipeline's configuration is data, never code.

Snakemake loads ``configfile:`` through YTE, which evaluates Python expressions when the file says
``__use_yte__: true``, and through PyYAML's FullLoader, which builds some Python objects from ``!!python/...``
tags. :func:`check_config_is_data` reads the file with ``yaml.safe_load`` first and refuses both, so the
Snakefile calls it before its ``configfile:`` directive.
"""

from __future__ import annotations

import os

import yaml


def check_config_is_data(path: str | os.PathLike) -> None:
    """Raise ``ValueError`` (one line naming ``path``) unless the file is plain YAML data without YTE."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: not plain YAML data ({str(e).splitlines()[0]})") from None
    if isinstance(data, dict) and "__use_yte__" in data:
        raise ValueError(f"{path}: __use_yte__ (a YTE template, i.e. code run by Snakemake) is not allowed in "
                         "the config; write plain values")
