"""The rank side of a distributed run: every rank runs the same distributed checks, in the same order, in lockstep.

A check that raises on a rank (a peer died, stopped answering until the group timeout, or the rank hit an
error of its own) is reported by that rank as `error`, naming the rank(s) that stopped or the one that
failed first with its reason (read from the group's store, see interconnect/group.py). Stopped ranks are
listed under "stopped" so the collector can give each its own `crash` or `timeout` result. After any such
failure the group cannot be trusted (its collectives may be out of step), so the remaining checks are
reported as skipped rather than attempted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from acceldoctor.interconnect.group import (
    GroupView,
    first_failure,
    mark_done,
    mark_failed,
    mark_in,
    stopped_ranks,
)
from acceldoctor.messages import describe_exception
from acceldoctor.runner.worker import Task

Publish = Callable[[dict[str, Any]], None]


def _raw(task: Task, status: str, message: str, metrics: list | None = None, duration_s: float = 0.0,
         **extra: Any) -> dict[str, Any]:
    return {"check": task.check_id, "status": status, "message": message, "metrics": metrics or [],
            "duration_s": duration_s, **extra}


def _split_fault(name: str | None):
    """(the rank fault, the op fault's name) of `--inject NAME`: a rank fault acts on one rank, an op fault on all."""
    if name is None:
        return None, None
    from acceldoctor.faults.catalog import get_fault

    fault = get_fault(name)
    return (fault, None) if fault.distributed else (None, name)


def run_one(index: int, task: Task, view: GroupView, device: str, group_timeout_s: float,
            on_progress: Callable[[int, int, str], None] | None) -> dict:
    """Run task `index` on this rank; a failure comes back as `error`, with "stopped" naming ranks that stopped."""
    import torch

    from acceldoctor.checks.context import CheckContext, SkipCheck
    from acceldoctor.checks.dtypes import float32_math
    from acceldoctor.checks.registry import get_check
    from acceldoctor.faults import injected
    from acceldoctor.faults.ranks import rank_fault_active

    spec = get_check(task.check_id)
    start = time.perf_counter()
    if view.world_size < spec.min_ranks:  # the same on every rank: no collective needed to agree
        return _raw(task, "skip", f"needs at least {spec.min_ranks} ranks, this run has {view.world_size}; run "
                    f"with --nproc {spec.min_ranks} or more, or under torchrun")
    rank_fault, op_fault = _split_fault(task.fault)
    ctx = CheckContext(device=torch.device(device), level=task.level, params=spec.params_for(task.level) | task.params,
                       seed=task.seed, on_progress=on_progress, group=view)
    mark_in(view, index, task.check_id)
    try:
        with rank_fault_active(rank_fault, view.rank), injected(op_fault), float32_math(reduced=False):
            outcome = spec.run(ctx)
            ctx.synchronize()
        raw = _raw(task, outcome.status.value, outcome.message, [m.model_dump() for m in outcome.metrics],
                   time.perf_counter() - start)
    except SkipCheck as exc:
        raw = _raw(task, "skip", str(exc), duration_s=time.perf_counter() - start)
    except Exception as exc:
        reason = describe_exception(exc, where=True)
        order = mark_failed(view, index, reason)
        stopped = stopped_ranks(view, index, task.check_id, group_timeout_s=group_timeout_s)
        first = first_failure(view, index) if order > 1 else None
        if stopped:
            who = "; ".join(f"{view.describe(s.rank)} {s.kind} in {s.where}" for s in stopped)
            message = f"could not finish because {who} ({describe_exception(exc)})"
        elif first is not None:
            message = f"could not finish because {view.describe(first.rank)} failed first: {first.where}"
        else:
            message = f"the check could not run: {reason}"
        return _raw(task, "error", message, duration_s=time.perf_counter() - start, broken=message,
                    stopped=[asdict(s) for s in stopped])
    mark_done(view, index)
    return raw


def run_rank_checks(tasks: list[Task], view: GroupView, device: str, publish: Publish, *, group_timeout_s: float,
                    on_progress: Callable[[int, int, str], None] | None = None) -> list[dict]:
    """Run `tasks` in order on this rank, publishing each result (with rank, host and device) as it finishes."""
    results = []
    broken = ""
    for index, task in enumerate(tasks):
        publish({"kind": "start", "index": index, "check": task.check_id})
        if broken:
            raw = _raw(task, "skip", f"not run: the rank group broke in {broken}")
        else:
            raw = run_one(index, task, view, device, group_timeout_s, on_progress if view.rank == 0 else None)
            if raw.pop("broken", None):
                broken = f"{task.check_id} ({raw['message']})"
        raw.update(index=index, rank=view.rank, host=view.me.host, device=device)
        results.append(raw)
        publish({"kind": "result", "raw": raw})
    return results
