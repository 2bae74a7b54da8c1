"""The table of engines ``dip fit --engine`` chooses from, and :func:`run_fit`, which runs the request's one."""

from __future__ import annotations

from typing import Any

from dip.engine.authors import AuthorsFit
from dip.engine.fit import Fit
from dip.engine.request import FitRequest

ENGINES: dict[str, type[Fit]] = {
    "ours": Fit,  # dip.engine.fit: the skip network of dip.core.network, the loop with its guard
    "authors": AuthorsFit,  # dip.engine.authors: the authors' network in a loop written after their notebooks
}


def run_fit(req: FitRequest, progress: bool | None = None) -> dict[str, Any]:
    """Run one fit end to end with the request's engine and return its metrics."""
    return ENGINES[req.engine](req, progress=progress).run()
