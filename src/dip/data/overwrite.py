"""Nothing a person owns is overwritten (issue 20, point 8): the check every command that writes one file runs
before it reads anything.

An output that is one of the command's inputs (the same file, through any path, link or hard link) is refused even
with ``--force``; any other existing file is replaced only with ``--force``. The refusal is one line (exit 2) and
leaves every file as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

from dip.errors import DipError


def check_output(out: Path, inputs: dict[str, Path | None], force: bool) -> None:
    """Raise :class:`DipError` unless writing ``out`` would touch no input and replace nothing unasked.

    ``inputs`` maps what each input is (in words, e.g. "the input image") to its path (None: not given)."""
    if not (out.exists() or out.is_symlink()):
        return
    for what, path in inputs.items():
        if path is not None and path.exists() and out.exists() and os.path.samefile(out, path):
            raise DipError(out, f"is {what} ({path}); choose another -o/--output (nothing was written)")
    if out.is_dir():
        raise DipError(out, "is a directory; -o/--output names the file to write")
    if not force:
        raise DipError(out, "exists; give --force to replace it, or another -o/--output (nothing was written)")
