"""`acceldoctor list` and `acceldoctor doc`."""

from __future__ import annotations

from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from acceldoctor.checks.docpage import check_markdown, fault_markdown
from acceldoctor.checks.registry import all_checks
from acceldoctor.cli.errors import UsageError
from acceldoctor.explain.docpage import entry_markdown
from acceldoctor.faults.catalog import FAULTS


def render_check_list(console: Console) -> None:
    table = Table(title="acceldoctor checks", expand=True)
    table.add_column("id", no_wrap=True)
    table.add_column("levels", no_wrap=True)
    table.add_column("what it verifies", ratio=1)
    for spec in all_checks().values():
        table.add_row(spec.id, ",".join(spec.levels) or "stress", spec.title)
    console.print(table)
    console.print("Details: `acceldoctor doc ID`. Injectable faults: `acceldoctor list --faults`.")


def render_fault_list(console: Console) -> None:
    table = Table(title="faults for --inject", expand=True)
    table.add_column("fault", no_wrap=True)
    table.add_column("caught by", no_wrap=True)
    table.add_column("expected", no_wrap=True)
    table.add_column("what it does", ratio=1)
    for fault in FAULTS.values():
        table.add_row(fault.name, fault.caught_by, fault.expected_status, fault.summary.strip())
    console.print(table)


def render_doc(doc_id: str, console: Console) -> None:
    checks = all_checks()
    if doc_id in checks:
        console.print(Markdown(check_markdown(checks[doc_id])))
    elif doc_id in FAULTS:
        console.print(Markdown(fault_markdown(FAULTS[doc_id])))
    elif (entry := _error_entry(doc_id)) is not None:
        console.print(Markdown(entry_markdown(entry)))
    else:
        raise UsageError(f"no check, fault or known error is called {doc_id!r}; see `acceldoctor list` and "
                         "`acceldoctor explain --list`")


def _error_entry(doc_id: str):
    from acceldoctor.explain.knowledge import load_knowledge_base

    wanted = doc_id.lower()
    return next((e for e in load_knowledge_base() if e.id == wanted), None)
