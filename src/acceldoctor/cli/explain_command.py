"""`acceldoctor explain FILE|DIR... [--json PATH]` and `acceldoctor explain --list`."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from acceldoctor.cli.errors import UsageError


def _knowledge_base():
    from acceldoctor.explain.knowledge import KnowledgeDataError, load_knowledge_base

    try:
        return load_knowledge_base()
    except KnowledgeDataError as exc:
        raise UsageError(f"the packaged knowledge base is broken: {exc}") from None


def _total_bytes(paths: list[Path]) -> int | None:
    """The bytes the scan will read, for the progress bar; None when unknown (a compressed file decompresses to more
    than its size, so its progress cannot be measured against it)."""
    from acceldoctor.explain.reader import GZIP_MAGIC
    from acceldoctor.explain.scan import iter_log_files

    total = 0
    for path in iter_log_files(paths):
        with contextlib.suppress(OSError):  # an unreadable file is reported by the scan itself
            with path.open("rb") as f:
                if f.read(2) == GZIP_MAGIC:
                    return None
            total += path.stat().st_size
    return total


def run_explain_command(paths: list[Path], json_path: str | None) -> int:
    from acceldoctor.explain.report import explain_exit_code, explain_json, render_explain
    from acceldoctor.explain.rootcause import find_root_cause
    from acceldoctor.explain.scan import scan
    from acceldoctor.report.writer import ReportWriteError, ReportWriter, write_atomically

    if not paths:
        raise UsageError("give one or more log files or folders to explain (or --list)")
    writer = ReportWriter(json_path)
    try:
        writer.check_writable()
    except ReportWriteError as exc:
        raise UsageError(str(exc)) from None
    entries = _knowledge_base()
    console = Console(stderr=json_path == "-")
    interactive = console.is_terminal and json_path != "-"
    if interactive:
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), console=console, transient=True) as progress:
            task = progress.add_task("scanning logs", total=_total_bytes(paths))
            result = scan(paths, entries, on_progress=lambda n: progress.advance(task, n))
    else:
        result = scan(paths, entries)
    if not result.files:
        if not result.unreadable:
            raise UsageError(f"no log files found under {', '.join(map(str, paths))}")
        for problem in result.unreadable:
            console.print(f"not scanned: {escape(problem)}", highlight=False)
        raise UsageError("nothing could be read" + (f": {result.unreadable[0]}" if len(result.unreadable) == 1 else
                                                    f" ({len(result.unreadable)} paths, listed above)"))
    root = find_root_cause(result.findings, result.ranks_seen)
    code = explain_exit_code(result)
    document = explain_json(result, root, code)
    if json_path == "-":
        sys.stdout.write(document)
        return code
    if writer.path is not None:
        try:
            write_atomically(writer.path, document, writer.file_mode, what="explain result")
        except ReportWriteError as exc:
            raise UsageError(str(exc)) from None
    render_explain(result, root, console)
    return code


def run_explain_list() -> None:
    entries = _knowledge_base()
    table = Table(title=f"{len(entries)} known errors (`acceldoctor doc ID` for one)", expand=True)
    table.add_column("id", no_wrap=True)
    table.add_column("category", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("title", ratio=1)
    for entry in entries:
        table.add_row(entry.id, entry.category, entry.severity, escape(entry.title))
    Console().print(table)
