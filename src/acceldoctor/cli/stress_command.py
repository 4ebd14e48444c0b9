"""`acceldoctor stress`: validate arguments, run the burn on every chosen device, print a line per interval and the
verdict."""

from __future__ import annotations

import re
import sys

from rich.console import Console

from acceldoctor.cli.errors import UsageError, interrupted
from acceldoctor.devices.discovery import UnknownDeviceError, list_devices, resolve_devices
from acceldoctor.devices.versions import host_info
from acceldoctor.faults.catalog import UnknownFault, get_fault
from acceldoctor.report.terminal import render_summary
from acceldoctor.report.writer import ReportWriteError, ReportWriter
from acceldoctor.signals import terminate_as_interrupt

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds in "90", "30s", "10m" or "1.5h"."""
    match = _DURATION.match(text.lower())
    if not match:
        raise UsageError(f"--duration {text!r}: give a number with s, m or h (e.g. 30s, 10m, 1h)")
    seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
    if seconds < 5:
        raise UsageError(f"--duration {text!r}: a burn-in needs at least 5 s")
    return seconds


def run_stress_command(*, duration: str, device: str | None, json_path: str | None, inject: str | None,
                       interval: float) -> int:
    from acceldoctor.stress.session import run_stress

    seconds = parse_duration(duration)
    if inject is not None:
        try:
            fault = get_fault(inject)
        except UnknownFault as exc:
            raise UsageError(f"{exc.args[0]}; see `acceldoctor list --faults`") from None
        if fault.distributed:
            raise UsageError(f"fault {inject!r} is a fault of one rank in a group; stress runs no group")
    try:
        targets = resolve_devices(device, list_devices())
    except UnknownDeviceError as exc:
        raise UsageError(str(exc)) from None
    writer = ReportWriter(json_path)
    try:
        writer.check_writable()
    except ReportWriteError as exc:
        raise UsageError(str(exc)) from None
    quiet = json_path == "-"

    def sample(device: str, s: dict) -> None:
        if not quiet:
            errors = f", {s['wrong_elements']} WRONG" if s["wrong_elements"] else ""
            sys.stderr.write(f"[{s['t_s']:>6.0f}/{seconds:.0f} s] {device}: {s['iterations']} products, "
                             f"{s['tflops']:.3g} TFLOP/s{errors}\n")

    try:
        with terminate_as_interrupt():
            report = run_stress(targets, host_info(), duration_s=seconds, interval_s=interval, fault=inject,
                                writer=writer, on_sample=sample)
    except KeyboardInterrupt as exc:
        raise interrupted(exc, writer.path) from None
    if not quiet:
        render_summary(report, Console())
        if writer.path:
            Console().print(f"report written to {writer.path}")
    return report.exit_code or 0
