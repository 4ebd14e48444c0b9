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


def fail_usage(message: str, code: int = 2) -> NoReturn:
    sys.stderr.write(f"acceldoctor: error: {first_line(message, limit=1000) or 'error'}\n")
    raise SystemExit(code)
