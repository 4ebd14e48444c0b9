"""The child process side: import torch once, then run check after check until told to stop.

A worker is reused across checks so that a run pays for one interpreter and one torch import,
not one per check. The parent replaces it when it dies (crash) or is killed (timeout).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any


@dataclass
class Task:
    check_id: str
    device: str
    level: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    fault: str | None = None


def run_task(task: Task, on_progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Run one check in this process and return a plain dict (picklable, no torch objects)."""
    import torch

    from acceldoctor.checks.context import CheckContext, SkipCheck
    from acceldoctor.checks.registry import get_check
    from acceldoctor.faults import injected
    from acceldoctor.report.model import Status

    start = time.perf_counter()
    try:
        spec = get_check(task.check_id)
        params = spec.params_for(task.level) | task.params
        ctx = CheckContext(device=torch.device(task.device), level=task.level, params=params, seed=task.seed,
                           on_progress=on_progress)
        with injected(task.fault):
            outcome = spec.run(ctx)
        status, message, metrics = outcome.status.value, outcome.message, [
            m.model_dump() for m in outcome.metrics]
    except SkipCheck as exc:
        status, message, metrics = Status.SKIP.value, str(exc), []
    except Exception as exc:  # a check that raises could not run: report it, keep the worker
        last = traceback.extract_tb(exc.__traceback__)[-1]
        where = f" (at {last.filename.rsplit('/', 1)[-1]}:{last.lineno})"
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        status = Status.ERROR.value
        message = f"the check could not run: {type(exc).__name__}: {text}{where}"
        metrics = []
    return {"status": status, "message": message, "metrics": metrics,
            "duration_s": time.perf_counter() - start}


def worker_main(conn: Connection) -> None:
    # Import the heavy parts before announcing readiness, so check timeouts never include start-up.
    import torch  # noqa: F401

    from acceldoctor.checks.registry import all_checks

    all_checks()
    conn.send({"ready": True})
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        conn.send(run_task(task, _ThrottledProgress(conn)))


class _ThrottledProgress:
    """Forward a check's progress to the parent at most a few times a second."""

    INTERVAL_S = 0.5

    def __init__(self, conn: Connection):
        self.conn = conn
        self.last = 0.0

    def __call__(self, done: int, total: int, what: str) -> None:
        now = time.monotonic()
        if now - self.last >= self.INTERVAL_S or done >= total:
            self.last = now
            self.conn.send({"progress": [done, total, what]})
