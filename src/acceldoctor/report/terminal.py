"""Render a report for a person at a terminal."""

from __future__ import annotations

import socket

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from acceldoctor.report.interconnect_tables import render_interconnect
from acceldoctor.report.model import Report, Result, Status

STATUS_STYLE = {
    Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim",
    Status.ERROR: "magenta", Status.TIMEOUT: "bold red", Status.CRASH: "bold red",
}


def where(result: Result, report: Report | None = None) -> str:
    """Where a result was measured: the device, and for a rank its number (and host, when not the report's)."""
    if result.rank is None:
        return result.device
    local = report.host.hostname if report is not None else socket.gethostname()
    host = f"{result.host} " if result.host and result.host != local else ""
    return f"{host}{result.device} rank {result.rank}"


def render_summary(report: Report, console: Console) -> None:
    verb = "stress" if report.timeline is not None else "check"
    table = Table(title=f"acceldoctor {verb} — run {report.run_id[:8]}", show_lines=False, expand=True)
    table.add_column("check", no_wrap=True)
    table.add_column("device", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("what was found", ratio=1)
    for r in report.results:
        style = STATUS_STYLE[r.status]
        # Messages quote tool output ("[/path/pair.cc:553] Connection closed"): never rich markup.
        table.add_row(r.check, escape(where(r, report)), f"[{style}]{r.status.value}[/]", f"{r.duration_s:.1f}s",
                      escape(r.message))
    console.print(table)
    render_interconnect(report, console)
    counts = ", ".join(f"{n} {s}" for s, n in report.summary.items() if n)
    problems = [r for r in report.results if r.status.is_problem]
    if problems:
        verdict = f"[bold red]{len(problems)} problem(s) found[/]; run `acceldoctor doc CHECK` for what to do"
    elif report.summary.get("error"):
        verdict = "[magenta]no problem found, but some checks could not run[/]"
    else:
        verdict = "[green]healthy: no problem found[/]"
    console.print(f"{verdict} ({counts}).")
