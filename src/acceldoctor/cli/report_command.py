"""`acceldoctor report FILE [--html OUT]`: show a saved report at the terminal, or write it as one HTML page."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from acceldoctor.cli.errors import UsageError

if TYPE_CHECKING:
    from acceldoctor.report.model import Report


def _load(path: Path) -> Report:
    from acceldoctor.baseline.baseline import load_report
    from acceldoctor.baseline.rules import BaselineDataError

    try:
        return load_report(path)
    except BaselineDataError as exc:
        raise UsageError(str(exc)) from None
    except RecursionError:  # JSON nested thousands deep: not a report, and json cannot even say where
        raise UsageError(f"report {path} is not an acceldoctor report: it is nested too deeply") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and a.samefile(b)
    except OSError:
        return False


def run_report_command(path: Path, html_out: Path | None) -> int:
    """Exit code 0 when shown or written, whatever the report found (its own exit code is on the page);
    2 when FILE is not a report or OUT cannot be written."""
    from acceldoctor.report.writer import ReportWriteError, ReportWriter, write_atomically

    target = ReportWriter(None if html_out is None else str(html_out))
    try:
        target.check_writable()  # before the work: a typo in OUT should not wait for the page to render
    except ReportWriteError as exc:
        raise UsageError(str(exc).replace("cannot write report", "cannot write the page")) from None
    report = _load(path)
    if target.path is None and not target.to_stdout:
        from rich.console import Console

        from acceldoctor.report.terminal import render_summary

        render_summary(report, Console())
        return 0
    if target.path is not None and _same_file(path, target.path):
        raise UsageError(f"--html {target.path} is the report itself; give another file for the page")

    from acceldoctor.report.html import render_report_html

    page = render_report_html(report)
    if target.to_stdout:
        sys.stdout.write(page)
        return 0
    try:
        write_atomically(target.path, page, target.file_mode, what="the page")
    except ReportWriteError as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write(f"wrote the report page to {target.path}\n")
    return 0
