"""Every exception type the `dip` command turns into one line, and the exit codes they map to.

The CLI prints a :class:`DipError` as one line on stderr (``dip: error: <what>: <problem>``) and exits with the
error's ``exit_code``.
"""

from __future__ import annotations

import errno

EXIT_USAGE = 2  # bad input, bad flag, bad config: nothing was written
EXIT_DIVERGED = 3  # the fit could not recover after the bounded number of backtracks; nothing was written
EXIT_INTERRUPTED = 130  # SIGINT/SIGTERM (128 + SIGINT, the shell's convention)


class DipError(Exception):
    """A problem with the user's input, named by ``subject`` (a file, a flag or a config key)."""

    exit_code = EXIT_USAGE

    def __init__(self, subject: str | object, problem: str):
        self.subject = str(subject)
        self.problem = problem
        super().__init__(f"{self.subject}: {problem}")


class DivergedError(DipError):
    """The backtracking guard gave up: the fit kept producing NaN or collapsing PSNR."""

    exit_code = EXIT_DIVERGED


class Interrupted(DipError):
    """The fit was asked to stop (SIGINT/SIGTERM) and saved a checkpoint first."""

    exit_code = EXIT_INTERRUPTED


_OS_PROBLEMS = {
    errno.ENOSPC: "no space left on device (free some space, then run the same command again)",
    errno.EDQUOT: "disk quota exceeded (free some space, then run the same command again)",
    errno.EROFS: "read-only file system (choose another output location)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EEXIST: "a file is in the way (a directory is needed here)",
    errno.ENOTDIR: "a file is in the way (a directory is needed here)",
}


def os_problem(e: OSError) -> str:
    """A short, actionable description of an operating-system error."""
    return _OS_PROBLEMS.get(e.errno, e.strerror or str(e))
