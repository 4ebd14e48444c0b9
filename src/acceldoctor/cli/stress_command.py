"""`acceldoctor stress`: validate arguments, burn every chosen device, show progress and the verdict."""

from __future__ import annotations

import os
import re
import sys

from rich.console import Console

from acceldoctor.cli.errors import UsageError, interrupted
from acceldoctor.cli.stress_display import StressDisplay
from acceldoctor.devices.discovery import UnknownDeviceError, list_devices, resolve_devices
from acceldoctor.devices.versions import host_info
from acceldoctor.faults.catalog import UnknownFault, get_fault
from acceldoctor.report.model import DeviceInfo
from acceldoctor.report.terminal import render_summary
from acceldoctor.report.writer import ReportWriteError, ReportWriter, write_atomically
from acceldoctor.signals import terminate_as_interrupt

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_CPU_WORKER = re.compile(r"^cpu:(\d+)$")
MAX_CPU_WORKERS = 256


def parse_duration(text: str) -> float:
    """Seconds in "90", "30s", "10m" or "1.5h"."""
    match = _DURATION.match(text.lower())
    if not match:
        raise UsageError(f"--duration {text!r}: give a number with s, m or h (e.g. 30s, 10m, 1h)")
    seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
    if seconds < 5:
        raise UsageError(f"--duration {text!r}: a burn-in needs at least 5 s")
    return seconds


def parse_workloads(text: str | None) -> tuple[str, ...]:
    from acceldoctor.stress.workloads import WORKLOAD_KINDS

    if not text:
        return WORKLOAD_KINDS
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    if unknown := [k for k in kinds if k not in WORKLOAD_KINDS] or not kinds:
        raise UsageError(f"--workload {text!r}: unknown {', '.join(unknown) if unknown else 'empty list'}; "
                         f"choose from {', '.join(WORKLOAD_KINDS)}")
    return kinds


def stress_devices(spec: str | None) -> list[DeviceInfo]:
    """`--device` as for `check`, plus `cpu:N`: worker N of the CPU, each on its own share of the cores."""
    devices = list_devices()
    parts = [p.strip() for p in (spec or "").split(",") if p.strip()]
    workers = [p for p in parts if _CPU_WORKER.match(p)]
    others = [p for p in parts if p not in workers]
    try:
        chosen = resolve_devices(",".join(others), devices) if others or not workers else []
    except UnknownDeviceError as exc:
        raise UsageError(f"{exc}, or CPU workers cpu:0, cpu:1, ...") from None
    cpu = next(d for d in devices if d.id == "cpu")
    for worker in workers:
        if int(_CPU_WORKER.match(worker).group(1)) >= MAX_CPU_WORKERS:
            raise UsageError(f"--device {worker}: at most {MAX_CPU_WORKERS} CPU workers")
        chosen.append(cpu.model_copy(update={"id": worker}))
    ids = [d.id for d in chosen]
    if len(set(ids)) < len(ids):
        raise UsageError(f"--device {spec!r} names a device twice")
    if "cpu" in ids and workers:
        raise UsageError("--device: burn the whole CPU (cpu) or CPU workers (cpu:0,cpu:1,...), not both")
    return chosen


def parse_injection(inject: str | None, devices: list[str]) -> dict[str, str]:
    """`FAULT` for every device, or `FAULT@DEVICE` for one: {device: fault}."""
    if inject is None:
        return {}
    name, _, target = inject.partition("@")
    try:
        fault = get_fault(name)
    except UnknownFault as exc:
        raise UsageError(f"{exc.args[0]}; see `acceldoctor list --faults`") from None
    if fault.distributed:
        raise UsageError(f"fault {name!r} is a fault of one rank in a group; stress runs no group")
    if target and target not in devices:
        raise UsageError(f"--inject {inject!r}: {target} is not among the devices under stress ({', '.join(devices)})")
    return {d: name for d in devices if not target or d == target}


def run_stress_command(*, duration: str, device: str | None, json_path: str | None, inject: str | None,
                       interval: float, workload: str | None = None, html_path: str | None = None) -> int:
    from acceldoctor.stress.session import run_stress

    seconds = parse_duration(duration)
    kinds = parse_workloads(workload)
    targets = stress_devices(device)
    faults = parse_injection(inject, [d.id for d in targets])
    writer = ReportWriter(json_path)
    if html_path == "-":
        raise UsageError("--html needs a file: the terminal shows the live table (`acceldoctor report FILE --html -` "
                         "prints a page)")
    page = ReportWriter(html_path) if html_path is not None else None
    if page is not None and writer.path is not None and page.path.resolve() == writer.path.resolve():
        raise UsageError(f"--html {html_path} is also the --json report; give the page another file")
    try:
        writer.check_writable()
        if page is not None:
            page.check_writable()
    except ReportWriteError as exc:
        raise UsageError(str(exc)) from None
    quiet = json_path == "-"
    err = Console(stderr=True, quiet=quiet)
    display = StressDisplay([d.id for d in targets], seconds, err, live=err.is_terminal and not quiet)
    try:
        with terminate_as_interrupt(), display:
            report = run_stress(targets, host_info(), duration_s=seconds, interval_s=interval, faults=faults,
                                kinds=kinds, writer=writer, on_sample=display.update)
    except KeyboardInterrupt as exc:
        _leave_if_stuck(err)
        raise interrupted(exc, writer.path) from None
    if page is not None:
        from acceldoctor.report.html import render_report_html

        try:
            write_atomically(page.path, render_report_html(report), page.file_mode, what="the page")
        except ReportWriteError as exc:  # the run is done and its JSON kept: say so, and still give its verdict
            err.print(f"acceldoctor: {exc}", highlight=False)
    if not quiet:
        render_summary(report, Console())
        for path, what in ((writer.path, "report"), (page and page.path, "report page")):
            if path:
                Console().print(f"{what} written to {path}", highlight=False)
    sys.stdout.flush()
    _leave_if_stuck(err, report.exit_code or 0)
    return report.exit_code or 0


def _leave_if_stuck(err: Console, code: int | None = None) -> None:
    """A device process that survived SIGKILL is stuck in the driver, and Python would wait for it forever at exit:
    say so and leave now (with `code`; on an interrupt, 130)."""
    from acceldoctor.stress.session import stuck_devices

    if stuck := stuck_devices():
        err.print(f"acceldoctor: {', '.join(s.removeprefix('stress:') for s in stuck)} could not be stopped (its "
                  "process is stuck in the driver); exiting without waiting for it", highlight=False)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130 if code is None else code)
