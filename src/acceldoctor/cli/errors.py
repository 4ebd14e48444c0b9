"""One-line errors and exit code 2 for bad input: a user never sees a traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

from acceldoctor.messages import first_line


class UsageError(Exception):
    """Bad input from the user (or an interrupted run): printed as one line, exit code 2 unless told."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def interrupted(exc: KeyboardInterrupt, partial_report: object | None) -> UsageError:
    """The one-line error for a run ended by Ctrl-C (exit 130) or SIGTERM (143), naming the partial report kept."""
    from acceldoctor.signals import Terminated

    kept = f"; the partial report is in {partial_report}" if partial_report else ""
    if isinstance(exc, Terminated):
        return UsageError(f"terminated{kept}", exit_code=143)
    return UsageError(f"interrupted{kept}", exit_code=130)


def fail_usage(message: str, code: int = 2) -> NoReturn:
    sys.stderr.write(f"acceldoctor: error: {first_line(message, limit=1000) or 'error'}\n")
    raise SystemExit(code)
