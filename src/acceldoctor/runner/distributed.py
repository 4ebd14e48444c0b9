"""The collecting side of a distributed run: start the ranks (or join torchrun's), turn what each rank reports
into report results carrying `rank` and `host`, and give every rank that died or hung its own result.

Two ways in, one rank program (runner/ranks.py):
- `run_local_ranks`: `acceldoctor check --nproc N`. This process starts N ranks (interconnect/launch.py)
  and receives their results as they finish; it knows first-hand which rank died (exit signal) or hung.
- `run_as_torchrun_rank`: `torchrun ... -m acceldoctor check`. This process is one rank. Every rank
  publishes its results in the group's store; rank 0 collects them into the report. Which rank stopped is
  what the survivors read from the store.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from acceldoctor.interconnect.group import Endpoint, device_for_rank, join
from acceldoctor.interconnect.launch import RankContext, backend_for, launch_local
from acceldoctor.report.model import Metric, Result, Status
from acceldoctor.runner.ranks import run_rank_checks
from acceldoctor.runner.worker import Task

OnResult = Callable[[Result], None]
OnProgress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class RankLayout:
    """How the ranks are laid out: how many, on which device type, over which backend."""

    nproc: int
    device_type: str
    backend: str | None = None
    group_timeout_s: float = 60.0

    @property
    def chosen_backend(self) -> str:
        return self.backend or backend_for(self.device_type)


def result_of(raw: dict[str, Any]) -> Result:
    return Result(check=raw["check"], device=raw["device"], status=Status(raw["status"]), message=raw["message"],
                  metrics=[Metric(**m) for m in raw["metrics"]], duration_s=round(raw["duration_s"], 4),
                  doc=raw["check"], rank=raw["rank"], host=raw["host"])


def stopped_result(check: str, rank: int, host: str, device: str, kind: str, detail: str) -> Result:
    """The result of a rank that did not finish `check`: `crash` when its process died, `timeout` when it hung."""
    status = Status.CRASH if kind == "died" else Status.TIMEOUT
    what = "died" if kind == "died" else "hung (alive, but it stopped answering its peers)"
    return Result(check=check, device=device, status=status, doc=check, rank=rank, host=host,
                  message=f"rank {rank} (host {host}, device {device}) {what} during {check}: {detail}.")


class _Throttle:
    """Forward progress at most twice a second (it crosses a process boundary)."""

    def __init__(self, send: Callable[[dict], None]):
        self.send, self.last = send, 0.0

    def __call__(self, done: int, total: int, what: str) -> None:
        now = time.monotonic()
        if now - self.last >= 0.5 or done >= total:
            self.last = now
            self.send({"kind": "progress", "progress": [done, total, what]})


def _local_rank_main(rctx: RankContext, tasks: list[Task], group_timeout_s: float) -> None:
    run_rank_checks(tasks, rctx.group, rctx.device, rctx.send, group_timeout_s=group_timeout_s,
                    on_progress=_Throttle(rctx.send))


def run_local_ranks(tasks: list[Task], layout: RankLayout, *, deadline_s: float,
                    on_start: Callable[[int], None] | None = None, on_result: OnResult | None = None,
                    on_progress: OnProgress | None = None) -> None:
    """Run `tasks` on `layout.nproc` local ranks; `on_start(index)` when rank 0 starts task `index`."""
    host = socket.gethostname()
    current: dict[int, int] = {}  # rank -> index of the task it is in
    hung: set[int] = set()  # ranks the survivors found hung: stopped as soon as the others are done

    def on_message(rank: int, message: dict) -> None:
        kind = message["kind"]
        if kind == "start":
            current[rank] = message["index"]
            if rank == 0 and on_start:
                on_start(message["index"])
        elif kind == "progress" and on_progress:
            on_progress(*message["progress"])
        elif kind == "result":
            raw = message["raw"]
            hung.update(s["rank"] for s in raw.get("stopped", []) if s["kind"] == "hung")
            if on_result:
                on_result(result_of(raw))

    outcome = launch_local(layout.nproc, _local_rank_main, (tasks, layout.group_timeout_s),
                           device_type=layout.device_type,
                           backend=layout.backend, group_timeout_s=layout.group_timeout_s, deadline_s=deadline_s,
                           on_message=on_message, abandoned=lambda: set(hung))
    for failure in outcome.failures:
        check = tasks[current.get(failure.rank, 0)].check_id
        device = device_for_rank(layout.device_type, failure.rank)
        if failure.kind == "error":  # it failed outside any check, e.g. could not join the group
            result = Result(check=check, device=device, status=Status.ERROR, doc=check, rank=failure.rank, host=host,
                            message=f"rank {failure.rank} could not run the distributed checks: {failure.message}.")
        else:
            result = stopped_result(check, failure.rank, host, device, failure.kind, failure.message)
        if on_result:
            on_result(result)


def run_as_torchrun_rank(tasks: list[Task], endpoint: Endpoint, layout: RankLayout, *, deadline_s: float,
                         on_start: Callable[[int], None] | None = None, on_result: OnResult | None = None,
                         on_progress: OnProgress | None = None) -> list[Result]:
    """Be one rank of a torchrun job; on rank 0, report every rank's results (others report only their own).

    The other ranks wait (bounded) for rank 0 to finish its report before returning: torchrun's agent stops
    every process on a node as soon as one of them exits with an error, which would cut rank 0 short.
    Nothing outlives `deadline_s`: with no launcher above it to stop a hung rank, a watchdog ends the process.
    """
    import torch.distributed as dist

    _start_watchdog(deadline_s, endpoint.rank)
    device = device_for_rank(layout.device_type, endpoint.local_rank)
    view = join(endpoint, backend=layout.chosen_backend, device=device, timeout_s=layout.group_timeout_s)
    store = view.store
    collected: list[Result] = []
    gone: set[int] = set()  # ranks rank 0 already reported as stopped: no later result will come from them

    def report(result: Result) -> None:
        collected.append(result)
        if on_result:
            on_result(result)

    def publish(message: dict) -> None:
        if message["kind"] == "start" and view.rank == 0 and on_start:
            on_start(message["index"])
        if message["kind"] != "result":
            return
        raw = message["raw"]
        store.set(f"result/{raw['index']}/{view.rank}", json.dumps(raw))
        report(result_of(raw))
        if view.rank == 0:
            _collect_peers(raw, view, store, layout.group_timeout_s, report, gone)

    raws = run_rank_checks(tasks, view, device, publish, group_timeout_s=layout.group_timeout_s,
                           on_progress=on_progress if view.rank == 0 else None)
    if view.rank == 0:
        store.set("report_done", "1")
    else:
        with contextlib.suppress(Exception):  # rank 0 is gone, or slow: the deadline below bounds the wait
            store.wait(["report_done"], datetime.timedelta(seconds=layout.group_timeout_s + 60))
    if all(raw["status"] != "error" for raw in raws):
        # After a failed collective, tearing the group down can block (NCCL): the process exit frees it instead.
        dist.destroy_process_group()
    return collected


def _start_watchdog(deadline_s: float, rank: int) -> None:
    def expire() -> None:
        sys.stderr.write(f"acceldoctor: rank {rank} is still running after the run's limit of {deadline_s:g} s "
                         f"(a hung device or peer); ending it\n")
        sys.stderr.flush()
        os._exit(1)

    timer = threading.Timer(deadline_s, expire)
    timer.daemon = True
    timer.start()


def _collect_peers(own: dict, view, store, wait_s: float, report: OnResult, gone: set[int]) -> None:
    """On rank 0: every other rank's result of the task rank 0 just finished, all waited for within one `wait_s`;
    a `crash`/`timeout` result for a rank that stopped (as rank 0 or any peer saw it) or never published."""
    task, check = own["index"], own["check"]
    deadline = time.monotonic() + wait_s
    stopped = {s["rank"]: s for s in own.get("stopped", [])}
    pending = [r for r in range(1, view.world_size) if r not in gone]
    reported: set[int] = set()

    def take(rank: int) -> None:
        raw = json.loads(store.get(f"result/{task}/{rank}"))
        reported.add(rank)
        report(result_of(raw))
        for s in raw.get("stopped", []):  # what the peers saw counts as much as what rank 0 saw
            stopped.setdefault(s["rank"], s)

    for rank in pending:
        if rank in stopped:
            continue
        try:
            store.wait([f"result/{task}/{rank}"], datetime.timedelta(seconds=max(0.1, deadline - time.monotonic())))
        except Exception:  # it never published within the time left: stuck, or gone
            continue
        take(rank)
    for rank in pending:
        if rank in reported:
            continue
        if store.check([f"result/{task}/{rank}"]):  # judged stopped by someone, yet it did finish
            take(rank)
            continue
        member = view.members[rank]
        gone.add(rank)
        seen = stopped.get(rank)
        if seen is not None:
            report(stopped_result(check, rank, member.host, member.device, seen["kind"], "seen by its peers"))
        else:
            report(stopped_result(check, rank, member.host, member.device, "hung",
                                  f"it published no result within {wait_s:g} s of rank 0"))
