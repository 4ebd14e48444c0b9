"""One `acceldoctor check` run: plan (checks x devices), execute in workers, write the report."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from acceldoctor.checks.registry import CheckSpec
from acceldoctor.interconnect.group import device_type
from acceldoctor.report.model import DeviceInfo, HostInfo, Metric, Report, Result, Status, exit_code_for
from acceldoctor.report.writer import ReportWriter
from acceldoctor.runner.distributed import RankLayout, run_as_torchrun_rank, run_local_ranks
from acceldoctor.runner.pool import WorkerPool, WorkerStartError
from acceldoctor.runner.worker import Task
from acceldoctor.signals import terminate_as_interrupt


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class PlannedCheck:
    spec: CheckSpec
    device: DeviceInfo
    params: dict[str, Any] = field(default_factory=dict)  # overrides of the level's parameter values


@dataclass(frozen=True)
class DistributedRun:
    """Where the distributed checks run: N local ranks this run starts, or, with `endpoint`, torchrun's group."""

    layout: RankLayout
    endpoint: Any = None  # interconnect.group.Endpoint when this process is a torchrun rank


def plan(specs: list[CheckSpec], devices: list[DeviceInfo],
         overrides: dict[str, dict[str, Any]] | None = None) -> list[PlannedCheck]:
    """Each single-device check on each device; each distributed check once (it runs on every rank)."""
    overrides = overrides or {}
    local = [PlannedCheck(spec, device, overrides.get(spec.id, {}))
             for device in devices for spec in specs if not spec.distributed]
    return local + [PlannedCheck(spec, devices[0], overrides.get(spec.id, {})) for spec in specs if spec.distributed]


def _run_task(pool: WorkerPool, task: Task, timeout_s: float,
              on_progress: Callable[[int, int, str], None] | None) -> dict[str, Any]:
    try:
        return pool.run(task, timeout_s, on_progress)
    except WorkerStartError as exc:
        return {"status": "error", "message": str(exc), "metrics": [], "duration_s": 0.0}


def _result_of(item: PlannedCheck, raw: dict[str, Any]) -> Result:
    return Result(
        check=item.spec.id,
        device=item.device.id,
        status=Status(raw["status"]),
        message=raw["message"],
        metrics=[Metric(**m) for m in raw["metrics"]],
        duration_s=round(raw["duration_s"], 4),
        doc=item.spec.id,
    )


# Only a verdict the judge made worse (a regression against a baseline) is re-measured.
_SEVERITY = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


def _confirm_regression(first: Result, second: Result) -> Result:
    """Keep the milder of two measurements: a regression counts only when a second measurement repeats it.

    Neighbours on a shared host or a brief clock dip can slow one measurement by tens of percent; a device that
    really regressed is slow both times. A second run that hung, crashed or errored is itself the problem to report.
    """
    duration = round(first.duration_s + second.duration_s, 4)
    if second.status not in _SEVERITY:
        kept = second.model_copy(update={"duration_s": duration})
        kept.message = (f"{second.message} (This was a second measurement, taken to confirm a first one judged "
                        f"{first.status.value}: {first.message.rstrip('.')}.)")
        return kept
    if _SEVERITY[second.status] < _SEVERITY[first.status]:
        kept = second.model_copy(update={"duration_s": duration})
        outcome = ("did not repeat it, so it counts as noise" if second.status is Status.PASS else
                   f"was milder ({second.status.value}), so that is what is reported")
        kept.message = (f"{second.message} (a first measurement was judged {first.status.value}: "
                        f"{first.message.rstrip('.')}; the second {outcome}.)")
        return kept
    kept = first.model_copy(update={"duration_s": duration})
    kept.message = f"{first.message} Confirmed by a second measurement."
    return kept


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
    distributed: DistributedRun | None = None,
) -> Report:
    """Run every planned check; the report file is rewritten after each result.

    `judge`, when given, may rework each result (e.g. against a baseline) before it is written and reported. A
    result the judge makes worse is measured a second time, and the milder of the two judgements is kept.
    """
    writer = writer or ReportWriter(None)
    report = Report(run_id=uuid.uuid4().hex, started_at=_now(), host=host, devices=devices)
    report.refresh_summary()
    writer.write(report)
    # A pool the caller passes in stays the caller's to close (it may run several plans on it).
    local = [item for item in planned if not item.spec.distributed]
    spread = [item for item in planned if item.spec.distributed]
    with (contextlib.nullcontext(pool) if pool is not None and local else
          WorkerPool() if local else contextlib.nullcontext()) as pool, terminate_as_interrupt():
        for item in local:
            if on_start:
                on_start(item)
            task = Task(check_id=item.spec.id, device=item.device.id, level=level, params=item.params, seed=seed,
                        fault=fault)

            def measure_once(task=task, item=item) -> tuple[Result, Result]:
                raw = _run_task(pool, task, timeout_s or item.spec.timeout_s, on_progress)
                measured = _result_of(item, raw)
                return measured, judge(measured, item.device) if judge else measured

            measured, result = measure_once()
            if _SEVERITY.get(result.status, 0) > _SEVERITY.get(measured.status, 0):
                result = _confirm_regression(result, measure_once()[1])
            writer.add_result(report, result)
            if on_result:
                on_result(result)
        if spread:
            _run_distributed(spread, distributed or DistributedRun(RankLayout(1, device_type(devices[0].id))),
                             report, writer, level=level, fault=fault, seed=seed,
                             on_start=on_start, on_result=on_result, on_progress=on_progress, judge=judge,
                             devices=devices)
    report.finished_at = _now()
    report.exit_code = exit_code_for(report.results)
    report.refresh_summary()
    writer.finish(report)
    return report


def _run_distributed(items: list[PlannedCheck], run: DistributedRun, report: Report, writer: ReportWriter, *,
                     level: str, fault: str | None, seed: int,
                     on_start, on_result, on_progress, judge, devices: list[DeviceInfo]) -> None:
    """Run the distributed checks on every rank; each rank's result is judged and written as it arrives."""
    tasks = [Task(check_id=i.spec.id, device=i.device.id, level=level, params=i.params, seed=seed, fault=fault)
             for i in items]
    by_id = {d.id: d for d in devices}

    def arrived(result: Result) -> None:
        if judge is not None:  # no second measurement here: it would mean a second run of the whole group
            result = judge(result, by_id.get(result.device, devices[0]))
        writer.add_result(report, result)
        if on_result:
            on_result(result)

    def started(index: int) -> None:
        if on_start:
            on_start(items[index])

    # Bounded: a rank still running after every check's own limit plus a group timeout each (plus start-up) is
    # stopped as hung; --timeout is the group timeout here, not a check's whole duration.
    deadline_s = 120.0 + sum(i.spec.timeout_s + run.layout.group_timeout_s for i in items)
    if run.endpoint is not None:
        run_as_torchrun_rank(tasks, run.endpoint, run.layout, deadline_s=deadline_s, on_start=started,
                             on_result=arrived, on_progress=on_progress)
        return
    run_local_ranks(tasks, run.layout, deadline_s=deadline_s, on_start=started, on_result=arrived,
                    on_progress=on_progress)
