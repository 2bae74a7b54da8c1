"""Every exception type the `dip` command turns into one line, and the exit codes they map to.

The CLI prints a :class:`DipError` as one line on stderr (``dip: error: <what>: <problem>``) and exits with the
error's ``exit_code``.
"""

from __future__ import annotations

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
