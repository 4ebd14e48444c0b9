"""One-line errors and exit code 2 for bad input: a user never sees a traceback."""

from __future__ import annotations

import sys
from typing import NoReturn


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def fail_usage(message: str, code: int = 2) -> NoReturn:
    first_line = message.strip().splitlines()[0] if message.strip() else "error"
    sys.stderr.write(f"acceldoctor: error: {first_line}\n")
    raise SystemExit(code)
