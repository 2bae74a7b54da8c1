"""The data manifest (``config/datasets.yaml``): which files the project needs, where they come from, what they
must be. Read and validated here (JSON Schema ``dip/data/schemas/datasets.schema.yaml``); :mod:`dip.data.fetch` puts the files in
place, the workflow lists them as the fetch rule's outputs.

An image lands at ``<dataset>/<name>.png``; a file with a ``path`` (the authors' code) at ``<dataset>/<path>``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from dip.data import schemas
from dip.errors import DipError


def load_manifest(path: str | os.PathLike) -> dict[str, dict[str, dict[str, Any]]]:
    """Read the manifest and validate it against ``dip/data/schemas/datasets.schema.yaml``; return ``{dataset: {name: entry}}``.

    Errors are one line naming the manifest file and the dotted key. Entries get ``fallback_url`` and ``bytes``
    (None) when they omit them.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DipError(path, "no such manifest file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise DipError(path, f"cannot read the manifest ({str(e).splitlines()[0]})") from None
    error = schemas.first_error(raw, "datasets")
    if error is not None:
        where = schemas.path_of(error)
        raise DipError(path, f"{where}: {schemas.problem(error)}" if where else schemas.problem(error))
    return {str(ds): {str(name): {"fallback_url": None, "bytes": None, **entry}
                      for name, entry in spec["files"].items()}
            for ds, spec in raw["datasets"].items()}


def manifest_files(manifest: dict[str, dict[str, dict[str, Any]]],
                   datasets: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{<dataset>/<path>: entry}`` (paths relative to the destination folder) for the given (default: all)
    datasets, in manifest order."""
    names = list(manifest) if not datasets else datasets
    for ds in names:
        if ds not in manifest:
            raise DipError("--dataset", f"unknown dataset {ds!r}; the manifest has {', '.join(manifest)}")
    return {f"{ds}/{entry.get('path') or f'{name}.png'}": entry
            for ds in dict.fromkeys(names) for name, entry in manifest[ds].items()}


def expected_files(manifest: dict[str, dict[str, dict[str, Any]]], datasets: list[str] | None = None) -> list[str]:
    """Paths relative to the destination folder (``<dataset>/<name>.png``, ``<dataset>/<path>``)."""
    return list(manifest_files(manifest, datasets))
