"""One-line errors and exit code 2 for bad input: a user never sees a traceback."""

from __future__ import annotations

import sys
from typing import NoReturn


class UsageError(Exception):
    """Bad input from the user (or an interrupted run): printed as one line, exit code 2 unless told."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def fail_usage(message: str, code: int = 2) -> NoReturn:
    first_line = message.strip().splitlines()[0] if message.strip() else "error"
    sys.stderr.write(f"acceldoctor: error: {first_line}\n")
    raise SystemExit(code)
