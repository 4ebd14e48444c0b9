"""`acceldoctor stress`: burn every chosen device at once, each in its own process, watched by a watchdog.

Each device's process sends one sample per interval. A device that sends nothing for `hang_after_s` is
killed and reported `timeout` while the others go on; a process that dies is `crash`. At the end each device
gets one `stability.gemm_burn` result: `fail` on any wrong or NaN element (silent data corruption), `warn`
or `fail` when its throughput drifted below the start beyond the limits of stress/verdict.py, else `pass`.
Every sample is kept in the report's `timeline`, written as the run goes, so a killed run still shows what happened.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from acceldoctor.report.model import DeviceInfo, HostInfo, Report, Result, Status, exit_code_for
from acceldoctor.report.writer import ReportWriter
from acceldoctor.stress.verdict import drift_limits, judge_burn

CHECK = "stability.gemm_burn"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _device_main(device: str, duration_s: float, interval_s: float, fault: str | None, samples) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    import torch

    from acceldoctor.faults import injected
    from acceldoctor.stress.burn import gemm_burn

    samples.put((device, "ready", None))  # the watchdog's clock starts now, not at the (slow) torch import
    try:
        with injected(fault):
            gemm_burn(torch.device(device), duration_s, interval_s=interval_s,
                      on_interval=lambda s: samples.put((device, "sample", s.as_dict())))
    except Exception as exc:  # reported for this device; the others go on
        samples.put((device, "error", f"{type(exc).__name__}: {exc}"))
        return
    samples.put((device, "done", None))


@dataclass
class _Watch:
    process: multiprocessing.Process
    last_seen: float
    samples: list[dict] = field(default_factory=list)
    ended: str = ""  # "done", "timeout", "crash" or "error: ..."


def run_stress(devices: list[DeviceInfo], host: HostInfo, *, duration_s: float, interval_s: float = 1.0,
               hang_after_s: float | None = None, fault: str | None = None,
               writer: ReportWriter | None = None, on_sample: Callable[[str, dict], None] | None = None) -> Report:
    writer = writer or ReportWriter(None)
    hang_after_s = hang_after_s or max(15.0, 5 * interval_s)
    report = Report(run_id=uuid.uuid4().hex, started_at=_now(), host=host, devices=devices, timeline={})
    report.refresh_summary()
    writer.write(report)
    context = multiprocessing.get_context("spawn")
    samples = context.Queue()
    begin = time.monotonic()
    watches = {}
    for info in devices:
        process = context.Process(target=_device_main, daemon=True,
                                  args=(info.id, duration_s, interval_s, fault, samples))
        process.start()
        watches[info.id] = _Watch(process, time.monotonic() + 60.0)  # start-up (torch import) gets a minute
    try:
        _watch(watches, samples, report, writer, hang_after_s, begin + duration_s + hang_after_s + 60, on_sample)
    finally:
        for watch in watches.values():
            if watch.process.is_alive():
                watch.process.kill()
            watch.process.join(5)
    for info in devices:
        writer.add_result(report, _verdict(info.id, watches[info.id]))
    report.finished_at = _now()
    report.exit_code = exit_code_for(report.results)
    report.refresh_summary()
    writer.finish(report)
    return report


def _watch(watches: dict[str, _Watch], samples, report: Report, writer: ReportWriter, hang_after_s: float,
           deadline: float, on_sample) -> None:
    while any(not w.ended for w in watches.values()):
        try:
            device, kind, value = samples.get(timeout=0.5)
        except queue.Empty:
            device = kind = None
        now = time.monotonic()
        if kind == "ready":
            watches[device].last_seen = now
        elif kind == "sample":
            watch = watches[device]
            watch.samples.append(value)
            watch.last_seen = now
            report.timeline.setdefault(device, []).append(value)
            writer.write(report)
            if on_sample:
                on_sample(device, value)
        elif kind == "done":
            watches[device].ended = "done"
        elif kind == "error":
            watches[device].ended = f"error: {value}"
        for watch in watches.values():
            if watch.ended:
                continue
            if not watch.process.is_alive():
                watch.ended = f"crash: exit {watch.process.exitcode}"
            elif now - watch.last_seen > hang_after_s or now > deadline:
                watch.process.kill()
                watch.ended = "timeout"


def _verdict(device: str, watch: _Watch) -> Result:
    outcome = judge_burn(device, watch.samples, *drift_limits(device.split(":", 1)[0]))
    seconds = watch.samples[-1]["t_s"] if watch.samples else 0.0
    done = f"after {sum(x['iterations'] for x in watch.samples)} products in {seconds:.0f} s"
    status, message = outcome.status, outcome.message
    if watch.ended == "timeout":
        status, message = Status.TIMEOUT, (f"{device} stopped answering {done}: no sample for longer than the "
                                           "watchdog allows; it was stopped while the other devices went on.")
    elif watch.ended.startswith("crash"):
        status, message = Status.CRASH, f"{device}'s burn process died ({watch.ended.split(': ', 1)[1]}) {done}."
    elif watch.ended.startswith("error"):
        status, message = Status.ERROR, f"the burn could not run on {device}: {watch.ended.split(': ', 1)[1]}."
    return Result(check=CHECK, device=device, status=status, message=message, metrics=outcome.metrics,
                  duration_s=round(seconds, 3), doc=CHECK)
