"""One-line texts from exceptions: every message a person reads is a single line."""

from __future__ import annotations

import traceback


def first_line(text: object, limit: int = 300) -> str:
    lines = str(text).strip().splitlines()
    line = lines[0].strip() if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def describe_exception(exc: BaseException, where: bool = False) -> str:
    """`Type: first line of the message`, optionally `(at file:line)` of the innermost frame."""
    text = first_line(exc) or "(no message)"
    location = ""
    if where and (frames := traceback.extract_tb(exc.__traceback__)):
        location = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})"
    return f"{type(exc).__name__}: {text}{location}"
