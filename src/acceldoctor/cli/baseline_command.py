"""`acceldoctor baseline create REPORT... -o baseline.json`: a baseline from healthy runs' reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from acceldoctor.cli.errors import UsageError

baseline_app = typer.Typer(
    name="baseline",
    help="Make a baseline from healthy runs, to compare later runs with (`acceldoctor check --baseline`).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@baseline_app.command()
def create(
    reports: Annotated[list[Path], typer.Argument(
        metavar="REPORT...", help="JSON reports of healthy `acceldoctor check` runs (repeats, several nodes).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the baseline JSON.")],
) -> None:
    """Median and spread of every rate and time metric across the reports, per check, device model and dtype."""
    from acceldoctor.baseline.baseline import build_baseline, load_report
    from acceldoctor.baseline.rules import BaselineDataError

    try:
        parsed = [load_report(path) for path in reports]
    except BaselineDataError as exc:
        raise UsageError(str(exc)) from None
    try:
        baseline = build_baseline(parsed)
    except ValueError as exc:
        raise UsageError(f"cannot build a baseline: {exc}") from None
    try:
        output.write_text(baseline.to_json() + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    Console().print(f"baseline of {len(baseline.metrics)} metrics from {len(parsed)} report(s) written to {output}")
