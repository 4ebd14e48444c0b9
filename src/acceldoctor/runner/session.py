"""One `acceldoctor check` run: plan (checks x devices), execute in workers, write the report."""

from __future__ import annotations

import contextlib
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from acceldoctor.checks.registry import CheckSpec
from acceldoctor.report.model import DeviceInfo, HostInfo, Metric, Report, Result, Status, exit_code_for
from acceldoctor.report.writer import ReportWriter
from acceldoctor.runner.pool import WorkerPool, WorkerStartError
from acceldoctor.runner.worker import Task


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler ending the job) during a run: handled like Ctrl-C, so workers are stopped."""


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class PlannedCheck:
    spec: CheckSpec
    device: DeviceInfo
    params: dict[str, Any] = field(default_factory=dict)  # overrides of the level's parameter values


def plan(specs: list[CheckSpec], devices: list[DeviceInfo],
         overrides: dict[str, dict[str, Any]] | None = None) -> list[PlannedCheck]:
    overrides = overrides or {}
    return [PlannedCheck(spec, device, overrides.get(spec.id, {})) for device in devices for spec in specs]


def run_plan(
    planned: list[PlannedCheck],
    *,
    level: str,
    host: HostInfo,
    devices: list[DeviceInfo],
    writer: ReportWriter | None = None,
    fault: str | None = None,
    timeout_s: float | None = None,
    seed: int = 0,
    on_start: Callable[[PlannedCheck], None] | None = None,
    on_result: Callable[[Result], None] | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    pool: WorkerPool | None = None,
    judge: Callable[[Result, DeviceInfo], Result] | None = None,
) -> Report:
    """Run every planned check; the report file is rewritten after each result.

    `judge`, when given, may rework each result (e.g. against a baseline) before it is written and reported.
    """
    writer = writer or ReportWriter(None)
    report = Report(run_id=uuid.uuid4().hex, started_at=_now(), host=host, devices=devices)
    report.refresh_summary()
    writer.write(report)
    with pool or WorkerPool() as pool, _terminate_as_interrupt():
        for item in planned:
            if on_start:
                on_start(item)
            task = Task(check_id=item.spec.id, device=item.device.id, level=level, params=item.params, seed=seed,
                        fault=fault)
            try:
                raw = pool.run(task, timeout_s or item.spec.timeout_s, on_progress)
            except WorkerStartError as exc:
                raw = {"status": "error", "message": str(exc), "metrics": [], "duration_s": 0.0}
            result = Result(
                check=item.spec.id,
                device=item.device.id,
                status=Status(raw["status"]),
                message=raw["message"],
                metrics=[Metric(**m) for m in raw["metrics"]],
                duration_s=round(raw["duration_s"], 4),
                doc=item.spec.id,
            )
            if judge:
                result = judge(result, item.device)
            writer.add_result(report, result)
            if on_result:
                on_result(result)
    report.finished_at = _now()
    report.exit_code = exit_code_for(report.results)
    report.refresh_summary()
    writer.finish(report)
    return report
