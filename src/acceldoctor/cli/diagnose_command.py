"""`acceldoctor diagnose REPORT...`: which nodes and devices of a fleet are defective, and by which rule."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from acceldoctor.cli.errors import UsageError
from acceldoctor.fleet.diagnose import DIAGNOSIS_SCHEMA, Diagnosis

SEVERITY_STYLE = {"fail": "bold red", "warn": "yellow"}


def run_diagnose_command(reports: list[Path], baseline_path: Path | None, rules_path: Path | None,
                         json_path: str | None) -> int:
    from acceldoctor.baseline.baseline import load_baseline, load_report
    from acceldoctor.baseline.rules import BaselineDataError
    from acceldoctor.fleet.diagnose import diagnose
    from acceldoctor.fleet.rules import load_diagnose_rules
    from acceldoctor.report.writer import ReportWriteError, ReportWriter, write_atomically

    writer = ReportWriter(json_path)
    try:
        writer.check_writable()
        rules = load_diagnose_rules(rules_path)
        baseline = load_baseline(baseline_path) if baseline_path is not None else None
        parsed = [load_report(path) for path in reports]
    except (BaselineDataError, ReportWriteError) as exc:
        raise UsageError(str(exc)) from None
    diagnosis = diagnose(parsed, rules, baseline)
    document = diagnosis_json(diagnosis, [str(p) for p in reports])
    if json_path == "-":
        sys.stdout.write(document)
        return diagnosis.exit_code
    if writer.path is not None:
        try:
            write_atomically(writer.path, document, writer.file_mode, what="diagnosis")
        except ReportWriteError as exc:
            raise UsageError(str(exc)) from None
    render_diagnosis(diagnosis, Console())
    return diagnosis.exit_code


def diagnosis_json(diagnosis: Diagnosis, sources: list[str]) -> str:
    return json.dumps({
        "schema": DIAGNOSIS_SCHEMA,
        "reports": sources,
        "nodes": diagnosis.nodes,
        "devices": diagnosis.devices,
        "flagged_nodes": diagnosis.flagged_nodes,
        "exit_code": diagnosis.exit_code,
        "skipped_rules": diagnosis.skipped_rules,
        "findings": [dataclasses.asdict(f) for f in diagnosis.findings],
        "groups": [dict(dataclasses.asdict(g), metric=g.metric.metric, check=g.metric.check, dtype=g.metric.dtype)
                   for g in diagnosis.groups],
    }, indent=2) + "\n"


def render_diagnosis(diagnosis: Diagnosis, console: Console) -> None:
    if diagnosis.findings:
        table = Table(title="Findings", expand=True, show_lines=True)
        table.add_column("node", no_wrap=True)
        table.add_column("device")
        table.add_column("rule", no_wrap=True)
        table.add_column("finding", ratio=1)
        for f in diagnosis.findings:
            table.add_row(escape(f.node), f"{escape(f.device)}\n[dim]{escape(f.model)}[/]",
                          f"[{SEVERITY_STYLE[f.severity]}]{escape(f.rule)}[/]", escape(f.message))
        console.print(table)
    for skipped in diagnosis.skipped_rules:
        console.print(f"[dim]rule not applied: {skipped}[/]")
    flagged = diagnosis.flagged_nodes
    warned = sorted({f.node for f in diagnosis.findings} - set(flagged))
    summary = f"{len(diagnosis.nodes)} node(s), {diagnosis.devices} device(s): "
    if flagged:
        summary += f"[bold red]{len(flagged)} defective[/] ({escape(', '.join(flagged))})"
    else:
        summary += "[green]no defective node[/]"
    if warned:
        summary += f"; [yellow]{len(warned)} with warnings[/] ({escape(', '.join(warned))})"
    console.print(summary + ".")
