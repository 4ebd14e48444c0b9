"""Write the report file as results arrive, so a killed run still leaves valid JSON."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from acceldoctor.report.model import Report, Result


class ReportWriteError(Exception):
    pass


def default_file_mode() -> int:
    """The mode open() would give a new file under the current umask (mkstemp alone would make it private)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_output(path: Path, file_mode: int | None = None, what: str = "file") -> Iterator[BinaryIO]:
    """A binary file whose content replaces `path` (by a rename) when the block ends without an exception.

    The file is a hidden temporary one in the same folder (`.NAME.XXXX.partial`), so a reader never sees half a
    file; it gets `file_mode` (default: what open() would give under the umask). On any exception, Ctrl-C
    included, the temporary file is removed and `path` left as it was; an OSError becomes ReportWriteError with a
    one-line message naming `what`.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise ReportWriteError(f"cannot write {what} to {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, default_file_mode() if file_mode is None else file_mode)
            yield f
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ReportWriteError(f"cannot write {what} to {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomically(path: Path, text: str, file_mode: int | None = None, what: str = "file") -> None:
    """Replace `path` by `text` (UTF-8) through a temporary file and a rename: a reader never sees half a file.

    Raises ReportWriteError with a one-line message; on any failure the previous file is left as it was.
    """
    with atomic_output(path, file_mode, what) as f:
        f.write(text.encode("utf-8"))


class ReportWriter:
    """Rewrites the whole report atomically (temp file + rename) after every result.

    A report holds tens of results, so rewriting is cheap, and a reader never sees a half-written
    file: at any moment the path holds the last complete state, with `finished_at` null until the end.
    """

    def __init__(self, path: str | None):
        self.path = None if path in (None, "-") else Path(path)
        self.to_stdout = path == "-"
        self.file_mode = default_file_mode()
        self._last_write = -float("inf")
        self._last_write_s = 0.0

    def check_writable(self) -> None:
        if self.path is None:
            return
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise ReportWriteError(f"cannot write report to {self.path}: folder {parent} does not exist")
        if self.path.is_dir():
            raise ReportWriteError(f"cannot write report to {self.path}: it is a folder")
        if not os.access(parent, os.W_OK) or (self.path.exists() and not os.access(self.path, os.W_OK)):
            raise ReportWriteError(f"cannot write report to {self.path}: permission denied")

    def write(self, report: Report) -> None:
        begin = time.monotonic()
        try:
            if self.path is not None:
                write_atomically(self.path, report.to_json() + "\n", self.file_mode, what="report")
        finally:
            self._last_write = time.monotonic()
            self._last_write_s = self._last_write - begin

    def write_at_most_every(self, report: Report, seconds: float) -> None:
        """Rewrite the file unless it was rewritten less than `seconds` ago, or less than 20 times as long ago as the
        last rewrite took (a report that grows all the time must not keep the writer busy rewriting it)."""
        if time.monotonic() - self._last_write >= max(seconds, 20 * self._last_write_s):
            self.write(report)

    def add_result(self, report: Report, result: Result) -> None:
        report.results.append(result)
        report.refresh_summary()
        self.write(report)

    def finish(self, report: Report) -> None:
        self.write(report)
        if self.to_stdout:
            sys.stdout.write(report.to_json() + "\n")
