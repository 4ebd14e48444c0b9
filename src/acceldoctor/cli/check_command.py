"""`acceldoctor check`: validate arguments, show progress, run the plan, print the summary."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from acceldoctor.checks.registry import LEVELS, CheckSpec, all_checks, select_checks
from acceldoctor.cli.errors import UsageError, interrupted
from acceldoctor.cli.params import parse_param_overrides
from acceldoctor.devices.discovery import UnknownDeviceError, list_devices, resolve_devices
from acceldoctor.devices.versions import host_info
from acceldoctor.faults.catalog import UnknownFault, get_fault
from acceldoctor.interconnect.group import device_type, endpoint_from_env
from acceldoctor.report.model import DeviceInfo, Report, Result
from acceldoctor.report.terminal import STATUS_STYLE, render_summary, where
from acceldoctor.report.writer import ReportWriteError, ReportWriter
from acceldoctor.runner.distributed import RankLayout
from acceldoctor.runner.pool import WorkerPool
from acceldoctor.runner.session import DistributedRun, PlannedCheck, plan, run_plan


def run_check_command(*, device: str | None, level: str, select: list[str], json_path: str | None,
                      inject: str | None, timeout: float | None, seed: int, params: list[str],
                      pool: WorkerPool | None = None, baseline_path: str | None = None, nproc: int | None = None,
                      backend: str | None = None, torchrun: bool = False) -> int:
    if level not in LEVELS:
        raise UsageError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    if inject is not None:
        try:
            get_fault(inject)
        except UnknownFault as exc:
            raise UsageError(f"{exc.args[0]}; see `acceldoctor list --faults`") from None
    patterns = [p.strip() for item in select for p in item.split(",") if p.strip()]
    try:
        specs = select_checks(level, patterns)
    except LookupError as exc:
        raise UsageError(str(exc)) from None
    if not specs:
        raise UsageError(f"no {level}-level check matches {', '.join(patterns)}; try --level full")
    overrides = parse_param_overrides(params, all_checks())
    judge = _baseline_judge(baseline_path) if baseline_path is not None else None
    found = list_devices()
    try:
        targets = resolve_devices(device, found)
    except UnknownDeviceError as exc:
        raise UsageError(str(exc)) from None
    distributed = _distributed_run(specs, targets, found, nproc=nproc, backend=backend, torchrun=torchrun,
                                   inject=inject, timeout=timeout)
    follower = distributed is not None and distributed.endpoint is not None and distributed.endpoint.rank != 0
    if distributed is not None and distributed.endpoint is not None:
        specs = _only_distributed(specs)
    # Under torchrun global rank 0 writes and prints the report; the others only say how they did, in one line.
    writer = ReportWriter(None if follower else json_path)
    try:
        writer.check_writable()
    except ReportWriteError as exc:
        raise UsageError(str(exc)) from None
    quiet = json_path == "-" or follower
    planned = plan(specs, targets, overrides)
    err = Console(stderr=True)
    run = functools.partial(run_plan, planned, level=level, host=host_info(), devices=targets, writer=writer,
                            fault=inject, timeout_s=timeout, seed=seed, pool=pool, judge=judge,
                            distributed=distributed)
    total = sum(distributed_ranks(distributed) if item.spec.distributed else 1 for item in planned)
    try:
        if quiet:
            report = run()
        elif err.is_terminal:
            report = _run_with_progress(run, total, err)
        else:
            report = _run_with_log_lines(run, total)
    except ReportWriteError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt as exc:
        raise interrupted(exc, writer.path) from None
    if follower:
        counts = ", ".join(f"{n} {s}" for s, n in report.summary.items() if n)
        sys.stderr.write(f"rank {distributed.endpoint.rank}: {counts}; global rank 0 writes the report\n")
    elif not quiet:
        render_summary(report, Console())
        if writer.path:
            Console().print(f"report written to {writer.path}")
    return report.exit_code or 0


def _distributed_run(specs: list[CheckSpec], targets: list[DeviceInfo], found: list[DeviceInfo], *,
                     nproc: int | None, backend: str | None, torchrun: bool, inject: str | None,
                     timeout: float | None) -> DistributedRun | None:
    """How the distributed checks will run (None when none is selected), or a UsageError saying why they cannot."""
    endpoint = None
    if torchrun:
        if nproc is not None:
            raise UsageError("--nproc starts ranks itself; under torchrun, torchrun's ranks are used (drop --nproc)")
        try:
            endpoint = endpoint_from_env()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    fault = get_fault(inject) if inject is not None else None
    if not any(s.distributed for s in specs):
        if nproc is not None or torchrun or (fault is not None and fault.distributed):
            raise UsageError("no interconnect check is selected, so --nproc, torchrun and rank faults have nothing "
                             "to run; add --select 'interconnect.*' (standard level or above)")
        return None
    kind = device_type(targets[0].id)
    world = endpoint.world_size if endpoint is not None else (nproc or 1)
    if endpoint is None and kind != "cpu":
        available = sum(1 for d in found if device_type(d.id) == kind)
        if world > available:
            raise UsageError(f"--nproc {world} needs {world} {kind} devices, and {available} were found")
    if fault is not None and fault.distributed:
        ranks = {fault.rank, getattr(fault, "peer", fault.rank)}
        if world < 2 or max(ranks) >= world:
            raise UsageError(f"fault {inject!r} concerns rank(s) {sorted(ranks)}, and this run has {world} rank(s); "
                             f"use --nproc {max(2, max(ranks) + 1)} or more")
    if backend is not None:
        _require_known_backend(backend)
    layout = RankLayout(world, kind, backend, group_timeout_s=min(timeout or 60.0, 600.0))
    return DistributedRun(layout, endpoint)


def _require_known_backend(backend: str) -> None:
    import torch.distributed as dist

    from acceldoctor.devices.backends import load_backends

    load_backends()  # torch_npu and friends register their backend (hccl) when imported
    known = [b for b in dist.Backend.backend_list if b not in ("undefined", "fake")]
    if backend.lower() not in known:
        raise UsageError(f"unknown --backend {backend!r}; this torch knows {', '.join(known)}")


def _only_distributed(specs: list[CheckSpec]) -> list[CheckSpec]:
    chosen = [s for s in specs if s.distributed]
    if skipped := len(specs) - len(chosen):
        Console(stderr=True).print(f"under torchrun only the interconnect checks run ({skipped} single-device "
                                   f"check(s) left out); run `acceldoctor check` on each node for those")
    return chosen


def distributed_ranks(run: DistributedRun | None) -> int:
    return run.layout.nproc if run is not None else 1


def _baseline_judge(path: str) -> Callable[[Result, DeviceInfo], Result]:
    from acceldoctor.baseline.baseline import judge_against_baseline, load_baseline
    from acceldoctor.baseline.rules import BaselineDataError, load_baseline_rules

    try:
        baseline, rules = load_baseline(Path(path)), load_baseline_rules()
    except BaselineDataError as exc:
        raise UsageError(str(exc)) from None

    def judge(result: Result, device: DeviceInfo) -> Result:
        return judge_against_baseline(result, device.name, baseline, rules)

    return judge


def _run_with_progress(run: Callable[..., Report], total: int, console: Console) -> Report:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("starting the worker", total=total)
        current = ""

        def started(item: PlannedCheck) -> None:
            nonlocal current
            current = f"{item.spec.id} on {'the ranks' if item.spec.distributed else item.device.id}"
            progress.update(bar, description=current)

        def advanced(done: int, total: int, what: str) -> None:
            progress.update(bar, description=f"{current} [{done}/{total}{' ' + what if what else ''}]")

        def finished(result: Result) -> None:
            style = STATUS_STYLE[result.status]
            progress.console.print(f"[{style}]{result.status.value:>7}[/] {result.check} ({where(result)}) "
                                   f"{result.duration_s:.1f}s")
            progress.advance(bar)

        return run(on_start=started, on_result=finished, on_progress=advanced)


def _run_with_log_lines(run: Callable[..., Report], total: int) -> Report:
    """Without a terminal (CI logs, pipes): one plain line per finished check on stderr."""
    done = 0

    def finished(result: Result) -> None:
        nonlocal done
        done += 1
        sys.stderr.write(f"[{done}/{total}] {result.status.value:>7} {result.check} ({where(result)}) "
                         f"{result.duration_s:.1f}s\n")
        sys.stderr.flush()

    return run(on_result=finished)
