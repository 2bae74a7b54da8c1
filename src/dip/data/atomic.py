"""Atomic file output: temporary siblings moved into place only on success, and cleanup after killed writers.

A reader never sees a half-written file or results folder; a writer killed with SIGKILL leaves only a hidden
temporary (``.<name>.<pid>.<random>.tmp``) that the next writer of the same path removes.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from dip.errors import DipError


def check_out_dir(out: Path) -> None:
    """Refuse an output folder path that is a file or cannot be written, before any work (a fit, a baseline)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not out.is_dir():
        raise DipError(out, "output path exists and is not a directory")
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise DipError(out, "output directory is not writable")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def temp_prefix(path: str | os.PathLike) -> str:
    """Prefix of this process's temporary files for ``path``: ``.<name>.<pid>.`` (see :func:`remove_stale_temps`)."""
    return f".{Path(path).name}.{os.getpid()}."


def remove_stale_temps(path: str | os.PathLike, suffix: str) -> list[Path]:
    """Delete temporary siblings of ``path`` (``.<name>.<pid>.*<suffix>``, files or folders) whose writer is gone.

    A process killed with SIGKILL (or a power loss) cannot clean up after itself; the next writer of the same
    file does it. Temporary files of live processes are left alone. Returns the removed paths.
    """
    target = Path(path)
    head = f".{target.name}."
    removed = []
    try:
        siblings = list(target.parent.glob(f".{glob.escape(target.name)}.*{suffix}"))
    except OSError:
        return removed
    for tmp in siblings:
        pid = tmp.name[len(head):].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            try:
                if tmp.is_dir() and not tmp.is_symlink():
                    shutil.rmtree(tmp)
                else:
                    tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def new_temp(path: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """A new empty file ``.<name>.<pid>.<random><suffix>`` beside ``path`` (its folder created if needed), with
    an ordinary file's permissions, for writing before an atomic :func:`os.replace` onto ``path``.

    Temporaries of ``path`` left by killed writers are removed first (:func:`remove_stale_temps`).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target, suffix)
    fd, name = tempfile.mkstemp(prefix=temp_prefix(target), suffix=suffix, dir=target.parent)
    os.close(fd)
    _ordinary_permissions(name, 0o666)  # mkstemp makes 0600 files; results are ordinary files
    return Path(name)


def _ordinary_permissions(path: str | os.PathLike, mode: int) -> None:
    """Give a temporary file (0o666) or folder (0o777) the permissions the umask gives new ones."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


class AtomicPath:
    """Context manager yielding a temporary path beside ``path``; moved into place only on success.

    The temporary file is ``.<name>.<pid>.<random>.tmp`` in the same directory (so the final
    :func:`os.replace` is atomic); on any error it is removed, and one left by a killed process is removed by
    the next writer. An ``OSError`` (disk full, read-only file system, ...) is re-raised naming ``path``.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __enter__(self) -> Path:
        try:
            self.tmp = new_temp(self.path)
        except OSError as e:
            raise OSError(e.errno, e.strerror, str(self.path)) from None
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                os.replace(self.tmp, self.path)
                return
            except OSError as e:
                self.tmp.unlink(missing_ok=True)
                raise OSError(e.errno, e.strerror, str(self.path)) from None
        self.tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and (exc.filename is None or str(exc.filename) == str(self.tmp)):
            exc.filename = str(self.path)  # name the file the user asked for, not our temporary one


class StagedFiles:
    """Render several outputs to temporary names beside them; move all into place together on success.

    >>> with StagedFiles() as st:
    ...     df.to_csv(st.path(out / "metrics.csv"))
    """

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []

    def path(self, final: str | os.PathLike) -> Path:
        """A fresh temporary path in ``final``'s directory (created if needed)."""
        tmp = new_temp(final)  # also removes the temporaries of a `dip report` that was killed
        self.pending.append((tmp, Path(final)))
        return tmp

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            for tmp, final in self.pending:
                os.replace(tmp, final)
        else:
            for tmp, _ in self.pending:
                tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with AtomicPath(path) as tmp:
        tmp.write_text(text)


@contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new temporary folder ``.<name>.<pid>.<random>.tmp`` beside the folder ``path``; on success its
    files move into ``path`` (created if absent, by one rename), ``metrics.json`` last, so a reader that sees
    ``metrics.json`` sees a complete result. On any error the temporary folder is removed and ``path`` is left
    as it was; one left by a killed writer is removed by the next writer (:func:`remove_stale_temps`).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target, ".tmp")
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target), suffix=".tmp", dir=target.parent))
    try:
        _ordinary_permissions(tmp, 0o777)
        yield tmp
        if not target.exists():
            os.rename(tmp, target)
            return
        for name in sorted((f.name for f in tmp.iterdir()), key=lambda n: n == "metrics.json"):
            os.replace(tmp / name, target / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
