"""The explain result as DESIGN.md's Explain JSON, and as text for a person."""

from __future__ import annotations

import json

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from acceldoctor.explain.rootcause import SERIOUS, RootCause
from acceldoctor.explain.scan import Finding, ScanResult

EXPLAIN_SCHEMA = "acceldoctor.explain/1"
SEVERITY_ORDER = {"critical": 0, "error": 1, "warning": 2, "info": 3}
SEVERITY_STYLE = {"critical": "bold red", "error": "red", "warning": "yellow", "info": "dim"}


def explain_exit_code(result: ScanResult) -> int:
    """1 when a serious finding or an unrecognized error line was found (error-looking lines nobody knows count as
    problems until a person has looked at them), else 0."""
    serious = any(f.entry.severity in SERIOUS for f in result.findings)
    return 1 if serious or result.unrecognized.templates else 0


def ordered(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then earliest in the logs."""
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.entry.severity], f.time.seconds if f.time else 0.0,
                                           f.file, f.line))


def finding_json(f: Finding) -> dict:
    return {"id": f.entry.id, "category": f.entry.category, "title": f.entry.title, "severity": f.entry.severity,
            "file": f.file, "line": f.line, "rank": f.rank, "time": f.time.text if f.time else None,
            "count": f.count, "excerpt": f.excerpt, "explanation": " ".join(f.entry.explanation.split()),
            "actions": list(f.entry.actions)}


def explain_json(result: ScanResult, root: RootCause | None, exit_code: int) -> str:
    return json.dumps({
        "schema": EXPLAIN_SCHEMA,
        "files": result.files,
        "unreadable": result.unreadable,
        "partly_read": result.partly_read,
        "bytes_scanned": result.bytes_scanned,
        "findings": [finding_json(f) for f in ordered(result.findings)],
        "root_cause": None if root is None else {
            "finding": finding_json(root.finding) if root.finding else None, "rank": root.rank,
            "reason": root.reason},
        "unrecognized": [{"template": t.template, "count": t.count, "examples": t.examples, "file": t.first_file,
                          "line": t.first_line} for t in result.unrecognized.top()],
        "unrecognized_dropped": result.unrecognized.dropped,
        "exit_code": exit_code,
    }, indent=2) + "\n"


def render_explain(result: ScanResult, root: RootCause | None, console: Console, *, show_actions: int = 3) -> None:
    if root is not None:
        console.print(f"[bold]Root cause:[/] {escape(root.reason)}")
        console.print()
    findings = ordered(result.findings)
    if findings:
        table = Table(title=f"{len(findings)} finding(s)", expand=True, show_lines=True)
        table.add_column("what", ratio=2)
        table.add_column("where", no_wrap=True)
        table.add_column("count", justify="right")
        table.add_column("excerpt", ratio=3)
        for f in findings:
            where = f"{f.file.rsplit('/', 1)[-1]}:{f.line}" + (f"\nrank {f.rank}" if f.rank is not None else "")
            table.add_row(f"[{SEVERITY_STYLE[f.entry.severity]}]{escape(f.entry.title)}[/]\n[dim]{f.entry.id} "
                          f"({f.entry.category})[/]", escape(where), str(f.count), escape(f.excerpt[:300]))
        console.print(table)
        shown: set[str] = set()
        for f in findings:
            if f.entry.id in shown or len(shown) >= show_actions:
                continue
            shown.add(f.entry.id)
            console.print(f"[bold]{escape(f.entry.title)}[/] [dim]({f.entry.id}; `acceldoctor doc {f.entry.id}`)[/]")
            console.print("  " + escape(" ".join(f.entry.explanation.split())))
            for i, action in enumerate(f.entry.actions, start=1):
                console.print(f"  {i}. {escape(action)}")
            console.print()
    templates = result.unrecognized.top(10)
    if templates:
        table = Table(title="Error-looking lines no entry knows, grouped", expand=True)
        table.add_column("count", justify="right")
        table.add_column("template", ratio=1)
        table.add_column("first seen", no_wrap=True)
        for t in templates:
            table.add_row(str(t.count), escape(t.template), escape(f"{t.first_file.rsplit('/', 1)[-1]}:{t.first_line}"))
        console.print(table)
    for problem in result.unreadable:
        console.print(f"[yellow]not scanned:[/] {escape(problem)}")
    for problem in result.partly_read:
        console.print(f"[yellow]partly scanned:[/] {escape(problem)}")
    size = result.bytes_scanned / 2**20
    if not findings and not templates:
        skipped = f"; {len(result.unreadable)} could not be read (above)" if result.unreadable else ""
        console.print(f"[green]Nothing wrong found[/] in the {len(result.files)} file(s) scanned, {size:.1f} MiB"
                      f"{skipped}.")
    else:
        unknown = sum(t.count for t in result.unrecognized.templates.values()) + result.unrecognized.dropped
        console.print(f"{len(findings)} finding(s) and {unknown} unrecognized error line(s) in {len(result.files)} "
                      f"file(s), {size:.1f} MiB.")
