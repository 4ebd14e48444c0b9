"""What the stability checks share: run stress workloads for the check's `duration_s`, reporting progress."""

from __future__ import annotations

from acceldoctor.checks.context import CheckContext
from acceldoctor.stress.workloads import run_workloads
from acceldoctor.stress.workloads.base import Workload


def burn_for_check(ctx: CheckContext, workloads: list[Workload], interval_s: float = 1.0) -> list[dict]:
    """The workloads' interval samples over `ctx.params["duration_s"]` seconds, progress shown in seconds."""
    total = float(ctx.params["duration_s"])
    return run_workloads(ctx.device, workloads, total, interval_s=interval_s,
                         on_interval=lambda s: ctx.progress(int(s["t_s"]), int(total), "s"))
