"""Write the report file as results arrive, so a killed run still leaves valid JSON."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from acceldoctor.report.model import Report, Result


class ReportWriteError(Exception):
    pass


class ReportWriter:
    """Rewrites the whole report atomically (temp file + rename) after every result.

    A report holds tens of results, so rewriting is cheap, and a reader never sees a half-written
    file: at any moment the path holds the last complete state, with `finished_at` null until the end.
    """

    def __init__(self, path: str | None):
        self.path = None if path in (None, "-") else Path(path)
        self.to_stdout = path == "-"
        umask = os.umask(0)
        os.umask(umask)
        self.file_mode = 0o666 & ~umask  # what open() would give; mkstemp alone would make it private

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
        if self.path is None:
            return
        text = report.to_json()
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent or ".")
        except OSError as exc:
            raise ReportWriteError(f"cannot write report to {self.path}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), self.file_mode)
                f.write(text)
                f.write("\n")
            os.replace(tmp, self.path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise ReportWriteError(f"cannot write report to {self.path}: {exc.strerror or exc}") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def add_result(self, report: Report, result: Result) -> None:
        report.results.append(result)
        report.refresh_summary()
        self.write(report)

    def finish(self, report: Report) -> None:
        self.write(report)
        if self.to_stdout:
            sys.stdout.write(report.to_json() + "\n")
