"""interconnect.stragglers: the rank that computes slower than its peers, and so holds back every collective.

The rule and the timing are interconnect/stragglers.py: every rank times the same fixed matrix product; a rank
whose median is over a margin slower than the median of the others AND beyond 3 robust standard deviations
of all ranks' medians is a straggler. Needs three ranks: with two, which one is "the slow one" cannot be told.
"""

from __future__ import annotations

import statistics

import torch
import torch.distributed as dist

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.interconnect.stragglers import find_stragglers, gather_rank_times, time_local_compute
from acceldoctor.report.model import Metric, Status


def _shares_cores(setting, ctx: CheckContext) -> bool:
    return ctx.device.type == "cpu" if setting == "auto" else bool(setting)


def _time_compute(ctx: CheckContext, *, one_at_a_time: bool) -> list[float]:
    """This rank's timings; ranks take turns when they would otherwise compete for the same cores.

    Turns go round one product at a time (rank 0, 1, 2, 0, 1, 2, ...) rather than one rank's whole series
    after another's: a burst of other work on a shared host then lands on every rank's series alike instead
    of making whichever rank was timing at that moment look like a straggler.
    """
    repeats, size = int(ctx.params["repeats"]), int(ctx.params["size"])
    if not one_at_a_time:
        return time_local_compute(ctx.device, repeats, size=size)
    turn = torch.zeros(1, device=ctx.device)
    mine: list[float] = []
    for round_index in range(repeats):
        for rank in range(ctx.group.world_size):
            if rank == ctx.group.rank:
                mine += time_local_compute(ctx.device, 1, size=size, warmup=1 if round_index == 0 else 0)
            dist.all_reduce(turn)  # the next rank starts when this one is done
    return mine


@register_check(
    id="interconnect.stragglers",
    title="Straggling ranks: local compute speed compared across ranks",
    levels=("standard", "full"),
    distributed=True,
    min_ranks=3,
    timeout_s=180.0,
    doc=CheckDoc(
        verifies=("Every rank times the same fixed float32 matrix product; a rank slower than the median of the "
                  "others by more than a margin, and by more than 3 robust standard deviations (1.4826 x MAD) of "
                  "the ranks' medians, is named with its host and device. When one is found, every rank is timed "
                  "again and keeps the faster of its two series: a throttled chip is slow every time, while a "
                  "burst of other load seldom lands on the same rank twice."),
        why=("A synchronous job runs at the pace of its slowest rank: one throttled, mis-clocked or shared chip "
             "makes every collective wait for it, and nothing in the job's logs says which one it is."),
        failure_means=("`warn`: this rank is slower than its peers by more than `warn_margin`; `fail`: by more "
                       "than `fail_margin` (e.g. 1.0 = twice as slow)."),
        remedy=("Look at the named device's clocks, temperature and power limit (`nvidia-smi -q -d "
                "CLOCK,PERFORMANCE`, `rocm-smi`, `npu-smi info`), at other processes on its host, and at its "
                "CPU affinity; run `acceldoctor check --device DEVICE --select 'performance.*'` on it."),
    ),
    params=(
        Param("size", 512, "Side of the square float32 matrices multiplied.", minimum=16),
        Param("repeats", 20, "Timed products per rank; the median is compared.", minimum=5),
        Param("warn_margin", 0.25, "Warn when a rank's median is this much slower than the others'.", minimum=0),
        Param("fail_margin", 1.0, "Fail when a rank's median is this much slower than the others'.", minimum=0),
        Param("one_at_a_time", "auto", "Time the ranks one after another (true), all at once (false), or one after "
              "another only on the CPU, where ranks share the host's cores and would slow each other (auto).",
              choices=("auto", True, False)),
    ),
)
def check_stragglers(ctx: CheckContext) -> CheckOutcome:
    group, p = ctx.group, ctx.params
    def measure() -> dict[int, list[float]]:
        return gather_rank_times(_time_compute(ctx, one_at_a_time=_shares_cores(p["one_at_a_time"], ctx)))

    times = measure()
    # Every rank holds the same times, so every rank takes the same branch. A throttled chip is slow every time
    # it is timed, while a burst of other load seldom lands on the same rank twice: a rank is named only if a
    # second timing finds it slow again (each rank keeps the faster of its two series).
    timed_twice = bool(find_stragglers(times, float(p["warn_margin"])))
    if timed_twice:
        again = measure()
        times = {rank: min(times[rank], again[rank], key=statistics.median) for rank in times}
    medians = {rank: statistics.median(t) for rank, t in times.items()}
    mine = medians[group.rank]
    others = statistics.median(m for r, m in medians.items() if r != group.rank)
    metrics = [
        Metric(name="compute_ms", value=mine * 1e3, unit="ms"),
        Metric(name="others_compute_ms", value=others * 1e3, unit="ms"),
        Metric(name="slowdown", value=mine / others, unit="ratio", threshold=1 + float(p["warn_margin"])),
    ]
    stragglers = find_stragglers(times, float(p["warn_margin"]))
    summary = (f"{int(p['size'])}x{int(p['size'])} float32 matmul takes {mine * 1e3:.3g} ms on this rank, "
               f"{others * 1e3:.3g} ms on the median of the other {group.world_size - 1}"
               f"{', timed twice' if timed_twice else ''}")
    if not stragglers:
        return CheckOutcome(Status.PASS, f"{summary}; no straggler among {group.world_size} ranks.", metrics)
    named = ", ".join(f"{group.describe(s.rank)} at {s.ratio:.2f}x" for s in stragglers)
    me = next((s for s in stragglers if s.rank == group.rank), None)
    if me is None:
        return CheckOutcome(Status.PASS, f"{summary}; straggler(s) elsewhere: {named}.", metrics)
    status = Status.FAIL if me.ratio > 1 + float(p["fail_margin"]) else Status.WARN
    return CheckOutcome(status, f"{group.describe(group.rank)} is a straggler: it computes {me.ratio:.2f}x slower "
                        f"than the median of the other ranks ({summary}).", metrics)
