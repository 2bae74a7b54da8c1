"""One exception type for every input problem a person can act on.

The CLI turns a :class:`DipError` into one line on stderr (``dip: error: <what>: <problem>``) and exit code 2.
"""

from __future__ import annotations

EXIT_USAGE = 2  # bad input, bad flag, bad config: nothing was written
EXIT_DIVERGED = 3  # the fit could not recover after the bounded number of backtracks


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
