"""`acceldoctor stress`: burn every chosen device at once, each in its own process, watched by a watchdog.

Each device's process (stress/device_process.py) sends one sample per interval; the parent adds the device's
telemetry to it, keeps it in the report's `timeline` (written as the run goes, so a killed run still shows what
happened) and passes it on for display. A device that sends nothing for `hang_after_s` is killed and reported
`timeout` while the others go on; a process that dies is `crash`. The verdicts are stress/results.py's.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from acceldoctor.report.model import DeviceInfo, HostInfo, Report, exit_code_for
from acceldoctor.report.writer import ReportWriter
from acceldoctor.stress.device_process import CPU_TYPE, STARTING, cpu_worker_cores, device_main
from acceldoctor.stress.results import device_results
from acceldoctor.stress.telemetry import open_telemetry
from acceldoctor.stress.telemetry.poller import TelemetryPoller
from acceldoctor.stress.workloads import WORKLOAD_KINDS

STARTUP_S = 60.0
# The report (timeline and all) is rewritten at most this often: an hour on eight devices is megabytes of JSON.
REWRITE_EVERY_S = 5.0  # a device process's torch import and device set-up, before the watchdog counts


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class DeviceWatch:
    """What the parent knows of one device's process."""

    process: multiprocessing.Process
    running: object  # the shared index of the workload being run (see device_process.STARTING)
    last_seen: float
    samples: list[dict] = field(default_factory=list)
    workloads: list[tuple[str, str, str]] = field(default_factory=list)  # (name, check, description)
    agreement: object = None  # the agreement product (a CPU tensor)
    vendor: str | None = None
    interval_s: float = 1.0
    telemetry: TelemetryPoller | None = None
    telemetry_reason: str = ""
    ended: str = ""  # "done", "timeout", "crash: ..." or "error: ..."
    failed_in: int | None = None  # the workload index running when it hung, died or raised


def _cpu_cores(devices: list[DeviceInfo]) -> dict[str, list[int] | None]:
    workers = [d.id for d in devices if d.id.startswith(f"{CPU_TYPE}:")]
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return {d: cpu_worker_cores(i, len(workers), available) if available else None for i, d in enumerate(workers)}


def run_stress(devices: list[DeviceInfo], host: HostInfo, *, duration_s: float, interval_s: float = 1.0,
               hang_after_s: float | None = None, faults: dict[str, str | None] | None = None,
               kinds: tuple[str, ...] = WORKLOAD_KINDS, writer: ReportWriter | None = None,
               on_sample: Callable[[str, dict], None] | None = None) -> Report:
    """Burn `devices` for `duration_s`; `faults` maps a device id to the fault injected there."""
    writer = writer or ReportWriter(None)
    faults = faults or {}
    hang_after_s = hang_after_s or max(15.0, 5 * interval_s)
    report = Report(run_id=uuid.uuid4().hex, started_at=_now(), host=host, devices=devices, timeline={})
    report.refresh_summary()
    writer.write(report)
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    cores = _cpu_cores(devices)
    watches: dict[str, DeviceWatch] = {}
    for info in devices:
        running = context.Value("i", STARTING)
        process = context.Process(target=device_main, daemon=True, args=(
            info.id, duration_s, interval_s, faults.get(info.id), kinds, cores.get(info.id), messages, running))
        process.start()
        watches[info.id] = DeviceWatch(process, running, time.monotonic() + STARTUP_S, vendor=info.vendor,
                                       interval_s=interval_s)
    deadline = time.monotonic() + STARTUP_S + duration_s + hang_after_s
    try:
        _watch(watches, messages, report, writer, hang_after_s, deadline, on_sample)
    finally:
        for watch in watches.values():
            if watch.process.is_alive():
                watch.process.kill()
            watch.process.join(5)
            if watch.telemetry is not None:
                watch.telemetry.close()
    models = {info.id: info.name for info in devices}
    for result in device_results(watches, models, kinds):
        writer.add_result(report, result)
    report.finished_at = _now()
    report.exit_code = exit_code_for(report.results)
    report.refresh_summary()
    writer.finish(report)
    return report


def _receive(watch: DeviceWatch, device: str, kind: str, value, report: Report, writer: ReportWriter,
             on_sample) -> None:
    if kind == "ready":
        source, watch.telemetry_reason = open_telemetry(device, value.get("pci_bus_id"), watch.vendor)
        watch.telemetry = TelemetryPoller(source, watch.interval_s) if source is not None else None
    elif kind == "agreement":
        watch.agreement = value
    elif kind == "workloads":
        watch.workloads = value
    elif kind == "sample":
        if watch.telemetry is not None and (reading := watch.telemetry.latest()):
            value["telemetry"] = reading
        watch.samples.append(value)
        report.timeline.setdefault(device, []).append(value)
        writer.write_at_most_every(report, REWRITE_EVERY_S)
        if on_sample:
            on_sample(device, value)
    elif kind == "done":
        watch.ended = "done"
    elif kind == "error":
        watch.failed_in, error = value
        watch.ended = f"error: {error}"


def _drain(messages, wait_s: float) -> list[tuple]:
    """Every message waiting now (waiting up to `wait_s` for the first)."""
    received = []
    try:
        received.append(messages.get(timeout=wait_s))
        while True:
            received.append(messages.get_nowait())
    except queue.Empty:
        return received


def _watch(watches: dict[str, DeviceWatch], messages, report: Report, writer: ReportWriter, hang_after_s: float,
           deadline: float, on_sample) -> None:
    def receive(wait_s: float) -> None:
        for device, kind, value in _drain(messages, wait_s):
            watch = watches[device]
            watch.last_seen = time.monotonic() if kind == "ready" else max(watch.last_seen, time.monotonic())
            _receive(watch, device, kind, value, report, writer, on_sample)

    while any(not w.ended for w in watches.values()):
        receive(0.5)
        now = time.monotonic()
        for watch in watches.values():
            if watch.ended:
                continue
            if not watch.process.is_alive():
                receive(0.2)  # a process that ended normally may have a `done` still on its way
                if not watch.ended:
                    watch.failed_in = watch.running.value
                    watch.ended = f"crash: exit {watch.process.exitcode}"
            elif now - watch.last_seen > hang_after_s or now > deadline:
                watch.failed_in = watch.running.value
                watch.process.kill()
                watch.ended = "timeout"
