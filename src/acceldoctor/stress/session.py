"""`acceldoctor stress`: burn every chosen device at once, each in its own process, watched by a watchdog.

Each device's process (stress/device_process.py) sends one sample per interval; the parent adds the device's
telemetry to it, keeps it in the report's `timeline` (written as the run goes, so a killed run still shows what
happened) and passes it on for display. A device that sends nothing for `hang_after_s` is killed and reported
`timeout` while the others go on; a process that dies is `crash`. The verdicts are stress/results.py's.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from acceldoctor.devices.telemetry import open_telemetry
from acceldoctor.devices.telemetry.poller import TelemetryPoller
from acceldoctor.report.model import DeviceInfo, HostInfo, Report, exit_code_for
from acceldoctor.report.writer import ReportWriteError, ReportWriter
from acceldoctor.stress.agreement import product_from_bytes
from acceldoctor.stress.device_process import CPU_TYPE, STARTING, cpu_worker_cores, device_main
from acceldoctor.stress.results import agreement_results, device_results
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
    last_seen: float  # a time.monotonic() value; silence is counted from it
    samples: list[dict] = field(default_factory=list)
    workloads: list[tuple[str, str, str]] = field(default_factory=list)  # (name, check, description)
    agreement: object = None  # the agreement product (a CPU tensor)
    vendor: str | None = None
    telemetry: TelemetryPoller | None = None
    telemetry_reason: str = ""
    ended: str = ""  # "done", "timeout", "overran", "interrupted", "crash: ..." or "error: ..."
    failed_in: int | None = None  # the workload index running when it hung, died or raised
    reported: bool = False  # its results are in the report
    receiver: object = None  # this device's pipe (None once the child has closed it)


def _cpu_cores(devices: list[DeviceInfo]) -> dict[str, list[int] | None]:
    workers = [d.id for d in devices if d.id.startswith(f"{CPU_TYPE}:")]
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return {d: cpu_worker_cores(i, len(workers), available) if available else None for i, d in enumerate(workers)}


class _Run:
    """One stress run: the device processes, what they sent, and the report written as it goes."""

    def __init__(self, devices, report, writer, kinds, interval_s, hang_after_s, on_sample):
        self.devices, self.report, self.writer, self.kinds = devices, report, writer, kinds
        self.interval_s, self.hang_after_s, self.on_sample = interval_s, hang_after_s, on_sample
        self.begin = time.monotonic()
        self.watches: dict[str, DeviceWatch] = {}
        self.write_failed = False

    def write(self, every_s: float = 0.0) -> None:
        try:
            self.writer.write_at_most_every(self.report, every_s)
        except ReportWriteError as exc:  # a full disk must not end the burn; the final write will say it again
            if not self.write_failed:
                sys.stderr.write(f"acceldoctor: {exc}; the burn goes on\n")
            self.write_failed = True

    def receive(self, device: str, kind: str, value) -> None:
        watch = self.watches[device]
        now = time.monotonic()
        # Building goldens and the first slices (after `workloads` and each `prepared`, until the first sample) may
        # compile kernels: that silence gets STARTUP_S. The small agreement product after `ready` does not.
        setting_up = kind in ("workloads", "prepared") and not watch.samples
        allowance = STARTUP_S - self.hang_after_s if setting_up else 0.0
        watch.last_seen = now + allowance
        if kind == "ready":
            watch.telemetry, watch.telemetry_reason = self._open_telemetry(device, value.get("pci_bus_id"),
                                                                           watch.vendor)
        elif kind == "agreement":
            watch.agreement = product_from_bytes(*value)
        elif kind == "workloads":
            watch.workloads = value
        elif kind == "sample":
            if watch.telemetry is not None and (reading := watch.telemetry.take_new()):
                value["telemetry"] = reading
            watch.samples.append(value)
            self.report.timeline.setdefault(device, []).append(value)
            self.write(REWRITE_EVERY_S)
            if self.on_sample:
                self.on_sample(device, value)
        elif kind == "done":
            watch.ended = "done"
        elif kind == "error":
            watch.failed_in, error = value
            watch.ended = f"error: {error}"

    def _open_telemetry(self, device: str, pci_bus_id: str | None, vendor: str | None):
        try:
            source, reason = open_telemetry(device, pci_bus_id, vendor)
        except Exception as exc:  # telemetry describes the burn; it must never stop it
            return None, f"the telemetry reader failed to open ({type(exc).__name__}: {exc})"
        return (TelemetryPoller(source, self.interval_s, self.begin) if source is not None else None), reason

    def report_device(self, device: str) -> None:
        """Write the device's results as soon as it has ended (the agreement waits for every device)."""
        watch = self.watches[device]
        if watch.reported:
            return
        watch.reported = True
        if watch.telemetry is not None:
            watch.telemetry.stop()
        for result in device_results(device, watch, self.kinds):
            self.report.results.append(result)
        self.report.refresh_summary()
        self.write()


def run_stress(devices: list[DeviceInfo], host: HostInfo, *, duration_s: float, interval_s: float = 1.0,
               hang_after_s: float | None = None, faults: dict[str, str | None] | None = None,
               kinds: tuple[str, ...] = WORKLOAD_KINDS, writer: ReportWriter | None = None,
               on_sample: Callable[[str, dict], None] | None = None) -> Report:
    """Burn `devices` for `duration_s`; `faults` maps a device id to the fault injected there.

    On Ctrl-C (KeyboardInterrupt) every device is judged on what it did, the report is finished, and the
    interrupt is raised again."""
    writer = writer or ReportWriter(None)
    faults = faults or {}
    hang_after_s = hang_after_s or max(15.0, 5 * interval_s)
    report = Report(run_id=uuid.uuid4().hex, started_at=_now(), host=host, devices=devices,
                    timeline={d.id: [] for d in devices})
    report.refresh_summary()
    writer.write(report)
    run = _Run(devices, report, writer, kinds, interval_s, hang_after_s, on_sample)
    context = multiprocessing.get_context("spawn")
    cores = _cpu_cores(devices)
    for info in devices:
        running = context.Value("i", STARTING, lock=False)  # one int: a lock a dying child holds would hang us
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=device_main, daemon=True, name=f"stress:{info.id}", args=(
            info.id, duration_s, interval_s, faults.get(info.id), kinds, cores.get(info.id), sender, running))
        process.start()
        sender.close()  # the child's end: once the child is gone, reading says so instead of waiting
        run.watches[info.id] = DeviceWatch(process, running, time.monotonic() + STARTUP_S, vendor=info.vendor,
                                           receiver=receiver)
    deadline = time.monotonic() + STARTUP_S + duration_s + hang_after_s
    interrupted = None
    try:
        _watch(run, deadline)
    except KeyboardInterrupt as exc:
        interrupted = exc
        for watch in run.watches.values():
            watch.ended = watch.ended or "interrupted"
    finally:
        _stop_processes(run.watches)
    for device in run.watches:
        run.report_device(device)
    models = {info.id: info.name for info in devices}
    for result in agreement_results(run.watches, models):
        report.results.append(result)
    report.finished_at = _now()
    report.exit_code = exit_code_for(report.results)
    report.refresh_summary()
    writer.finish(report)
    if interrupted is not None:
        raise interrupted
    return report


def _stop_processes(watches: dict[str, DeviceWatch]) -> None:
    for watch in watches.values():
        if watch.process.is_alive():
            watch.process.kill()
    for watch in watches.values():
        watch.process.join(5)
        if watch.receiver is not None:
            watch.receiver.close()
        if watch.telemetry is not None:
            watch.telemetry.stop()
    for watch in watches.values():
        if watch.telemetry is not None:
            watch.telemetry.close()


def stuck_devices() -> list[str]:
    """Device processes that survived SIGKILL (stuck in the driver): the interpreter would wait for them forever at
    exit, so the command says so and leaves with os._exit."""
    return [p.name for p in multiprocessing.active_children() if p.name.startswith("stress:")]


def _drain(watches: dict[str, DeviceWatch], wait_s: float) -> list[tuple]:
    """Every message waiting now on the devices' pipes (waiting up to `wait_s` for the first)."""
    open_pipes = {w.receiver: w for w in watches.values() if w.receiver is not None}
    received = []
    if not open_pipes:  # every child has closed its end: nothing to wait on, but do not spin
        time.sleep(min(wait_s, 0.1))
        return received
    for pipe in multiprocessing.connection.wait(list(open_pipes), timeout=wait_s):
        try:
            while pipe.poll():
                received.append(pipe.recv())
        except (EOFError, OSError):  # the child has ended (or was killed mid-message): nothing more will come
            open_pipes[pipe].receiver = None
            pipe.close()
        except Exception as exc:  # a message cut off or unreadable: drop it, go on
            sys.stderr.write(f"acceldoctor: a device message was lost ({type(exc).__name__}: {exc})\n")
    return received


def _watch(run: _Run, deadline: float) -> None:
    def receive(wait_s: float) -> None:
        for device, kind, value in _drain(run.watches, wait_s):
            run.receive(device, kind, value)
            if run.watches[device].ended:
                run.report_device(device)

    while any(not w.ended for w in run.watches.values()):
        receive(0.5)
        now = time.monotonic()
        for device, watch in run.watches.items():
            if watch.ended:
                continue
            if not watch.process.is_alive():
                receive(0.2)  # a process that ended normally may have a `done` still on its way
                if not watch.ended:
                    watch.failed_in = watch.running.value
                    watch.ended = f"crash: {_exit_status(watch.process.exitcode)}"
            elif now - watch.last_seen > run.hang_after_s or now > deadline:
                watch.failed_in = watch.running.value
                watch.process.kill()
                watch.ended = "timeout" if now <= deadline else "overran"
            if watch.ended:
                run.report_device(device)


def _exit_status(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed: out of memory?)" if name == "SIGKILL" else ""
        return f"killed by {name}{hint}"
    return f"exit {code}"
