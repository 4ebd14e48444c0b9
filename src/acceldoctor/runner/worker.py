"""The child process side: import torch once, then run check after check until told to stop.

A worker is reused across checks so that a run pays for one interpreter and one torch import,
not one per check. The parent replaces it when it dies (crash), is killed (timeout), or reports
that its device stopped responding (a sticky device fault poisons the whole process).
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from acceldoctor.messages import describe_exception


@dataclass
class Task:
    check_id: str
    device: str
    level: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    fault: str | None = None


@dataclass
class WarmUp:
    """Initialise a device before its first check, so that check's time limit excludes driver start-up."""

    device: str


def run_task(task: Task, on_progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Run one check in this process and return a plain dict (picklable, no torch objects)."""
    import torch

    from acceldoctor.checks.context import CheckContext, SkipCheck
    from acceldoctor.checks.dtypes import float32_math
    from acceldoctor.checks.registry import get_check
    from acceldoctor.devices.backends import device_responds
    from acceldoctor.faults import injected
    from acceldoctor.report.model import Status

    start = time.perf_counter()
    retire = False
    try:
        spec = get_check(task.check_id)
        params = spec.params_for(task.level) | task.params
        ctx = CheckContext(device=torch.device(task.device), level=task.level, params=params, seed=task.seed,
                           on_progress=on_progress)
        # fp32 means IEEE fp32 unless a check asks for the tf32 variant (cuDNN convs default to TF32).
        with injected(task.fault), float32_math(reduced=False):
            outcome = spec.run(ctx)
            ctx.synchronize()  # an asynchronous device fault belongs to this check, not the next one
        status, message, metrics = outcome.status.value, outcome.message, [
            m.model_dump() for m in outcome.metrics]
    except SkipCheck as exc:
        status, message, metrics = Status.SKIP.value, str(exc), []
    except Exception as exc:
        metrics = []
        device = torch.device(task.device)
        if device.type != "cpu" and not device_responds(device):
            # Illegal address, device-side assert, ECC or link error: the device itself failed.
            status, retire = Status.FAIL.value, True
            message = (f"the device stopped responding during the check ({describe_exception(exc, where=True)}); "
                       "look for the driver's error in the kernel log (dmesg) and re-run; if it repeats, "
                       "take the device out of service")
        else:  # the check could not run: report it and keep the worker
            status = Status.ERROR.value
            message = f"the check could not run: {describe_exception(exc, where=True)}"
    return {"status": status, "message": message, "metrics": metrics, "retire": retire,
            "duration_s": time.perf_counter() - start}


def warm_up(device_name: str) -> dict[str, Any]:
    import torch

    from acceldoctor.devices.backends import synchronize

    try:
        device = torch.device(device_name)
        torch.ones(1, device=device).add_(1)
        synchronize(device)
        return {"warm": True}
    except Exception as exc:
        return {"warm": False, "error": describe_exception(exc)}


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the parent dies, so no hung worker holds a device."""
    if sys.platform != "linux":
        return
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def worker_main(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    # Import the heavy parts before announcing readiness, so check timeouts never include start-up.
    import torch  # noqa: F401

    from acceldoctor.checks.registry import all_checks
    from acceldoctor.devices.backends import load_backends

    load_backends()
    all_checks()
    conn.send({"ready": True})
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        if isinstance(message, WarmUp):
            conn.send(warm_up(message.device))
            continue
        result = run_task(message, _ThrottledProgress(conn))
        conn.send(result)
        if result["retire"]:
            return


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
