"""What every collective check (interconnect.all_reduce, all_gather, ...) shares: the size sweep, the verdict of
one rank, and the declaration. Each check module only names its op.

Every rank of the group runs the same sweep in lockstep; every figure that decides what happens next (the
next size, the time budget) is the same on all ranks, because `measure_collective` returns the slowest
rank's time for each iteration to every rank.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist

from acceldoctor.checks.context import CheckContext, CheckOutcome, SkipCheck
from acceldoctor.checks.performance._spec import judge_efficiency, spec_for
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.interconnect import stats
from acceldoctor.interconnect.collectives import CollectiveResult, measure_collective
from acceldoctor.interconnect.stragglers import find_stragglers
from acceldoctor.report.model import Metric, Status

MIB = 1 << 20


def human_bytes(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"


def collective_params() -> tuple[Param, ...]:
    return (
        Param("min_bytes", 1024, "Smallest message of the sweep (nccl-tests' byte convention for the op).", minimum=4),
        Param("max_bytes", 64 * MIB, "Largest message of the sweep; also bounded by free device memory and the time "
              "budget.", per_level={"full": 1024 * MIB}, minimum=4),
        Param("time_budget_s", 20.0, "Stop growing the message once the sweep would pass this many seconds.",
              per_level={"full": 120.0}, minimum=0.1),
        Param("warmup", 2, "Untimed calls before the timed ones at each size (all but the last are checked).",
              minimum=0),
        Param("repeats", 10, "Timed calls per size; the median is reported.", minimum=3),
        Param("warn_efficiency", 0.5, "Warn below this share of the spec sheet's chip-to-chip bandwidth.",
              minimum=0, maximum=1),
        Param("fail_efficiency", 0.2, "Fail below this share of the spec sheet's chip-to-chip bandwidth.",
              minimum=0, maximum=1),
        Param("straggler_margin", 0.5, "Warn on a rank whose own call time is this much slower than the others' "
              "(and beyond 3 robust standard deviations) at three quarters of the sizes or more.", minimum=0),
    )


def _max_bytes_for_memory(device: torch.device, requested: int) -> int:
    """Largest size whose buffers fit in half the device's free memory, agreed by all ranks (the smallest)."""
    limit = requested
    if device.type != "cpu":
        try:
            free, _ = getattr(torch, device.type).mem_get_info(device)
            limit = min(limit, int(free * 0.5) // 4)  # input, output, expected value and a spare
        except (AttributeError, RuntimeError):
            pass
    limits: list[int | None] = [None] * dist.get_world_size()
    dist.all_gather_object(limits, limit)
    return min(v for v in limits if v is not None)


def sweep(ctx: CheckContext, op: str) -> list[CollectiveResult]:
    """Measure `op` at growing powers of two until max_bytes, memory or the time budget stops it."""
    p = ctx.params
    max_bytes = _max_bytes_for_memory(ctx.device, int(p["max_bytes"]))
    sizes = stats.size_sweep(int(p["min_bytes"]), max(int(p["min_bytes"]), max_bytes))
    calls = 1 + int(p["warmup"]) + int(p["repeats"])
    results, spent_s = [], 0.0
    for i, size in enumerate(sizes):
        ctx.progress(i, len(sizes), human_bytes(size))
        result = measure_collective(op, size, device=ctx.device, warmup=int(p["warmup"]), repeats=int(p["repeats"]))
        results.append(result)
        if not result.supported:
            break
        spent_s += calls * result.median_s
        # The next size takes about twice as long (bandwidth-bound); every rank sees the same medians.
        if spent_s + 2 * calls * result.median_s > float(p["time_budget_s"]):
            break
    ctx.progress(len(sizes), len(sizes), "")
    return results


def _wrong_data_message(op: str, results: list[CollectiveResult], ctx: CheckContext) -> str:
    group = ctx.group
    wrong = sum(r.wrong_elements for r in results)
    by_source: dict[int, int] = {}
    unattributed = 0
    mine = 0
    for result in results:
        for source, count in result.wrong_by_source.items():
            by_source[source] = by_source.get(source, 0) + count
        unattributed += sum(o.unattributed for o in result.ranks)
        mine += sum(o.wrong_elements for o in result.ranks if o.rank == group.rank)
    first = next(r for r in results if r.wrong_elements)
    if by_source:
        culprits = ", ".join(f"{group.describe(r)} ({c})" for r, c in sorted(by_source.items(), key=lambda x: -x[1]))
        named = f"traced to {culprits}"
    else:
        named = "not traceable to one rank (a wrong sum, not a missing or doubled contribution)"
    extra = f"; {unattributed} more could not be traced" if by_source and unattributed else ""
    return (f"{op} returned wrong data: {wrong} wrong elements over all ranks, first at "
            f"{human_bytes(first.size_bytes)}, "
            f"{named}{extra}; this rank received {mine}")


def _straggling_sizes(results: list[CollectiveResult], margin: float) -> dict[int, list[tuple[int, float]]]:
    """Per rank, the sizes (and slowdowns) at which its own call times made it a straggler."""
    found: dict[int, list[tuple[int, float]]] = {}
    for result in results:
        for straggler in find_stragglers({o.rank: list(o.times_s) for o in result.ranks}, margin):
            found.setdefault(straggler.rank, []).append((result.size_bytes, straggler.ratio))
    return found


def collective_outcome(ctx: CheckContext, op: str, results: list[CollectiveResult]) -> CheckOutcome:
    """This rank's verdict: the group's correctness and bandwidth, and whether this rank was the slow one."""
    group, p = ctx.group, ctx.params
    if not results:
        raise SkipCheck(f"no message size between {p['min_bytes']} and {p['max_bytes']} bytes fits on the device")
    if not results[-1].supported:
        raise SkipCheck(f"the {results[-1].backend} backend cannot run {op}: {results[-1].unsupported_reason}")
    metrics: list[Metric] = []
    for result in results:
        label = human_bytes(result.size_bytes)
        metrics.append(Metric(name=f"busbw_gbps@{label}", value=result.busbw_gbps, unit="GB/s"))
        metrics.append(Metric(name=f"time_us@{label}", value=result.median_s * 1e6, unit="us"))
    best = max(results, key=lambda r: r.busbw_gbps if r.world_size > 1 else r.algbw_gbps)
    wrong = sum(r.wrong_elements for r in results)
    metrics += [
        Metric(name="busbw_gbps", value=best.busbw_gbps, unit="GB/s"),
        Metric(name="algbw_gbps", value=best.algbw_gbps, unit="GB/s"),
        Metric(name="latency_us", value=results[0].median_s * 1e6, unit="us"),
        Metric(name="wrong_elements", value=wrong, unit="count", threshold=0),
        Metric(name="world_size", value=group.world_size, unit="ranks"),
    ]
    sizes = f"{human_bytes(results[0].size_bytes)} to {human_bytes(results[-1].size_bytes)}"
    summary = (f"{op} over {group.world_size} rank(s) ({best.backend}, {best.implementation}): peak bus bandwidth "
               f"{best.busbw_gbps:.3g} GB/s (algbw {best.algbw_gbps:.3g} GB/s) at {human_bytes(best.size_bytes)}, "
               f"{results[0].median_s * 1e6:.3g} us at {human_bytes(results[0].size_bytes)}; sizes {sizes}")
    if wrong:
        return CheckOutcome(Status.FAIL, _wrong_data_message(op, results, ctx) + ".", metrics)

    status, problems = Status.PASS, []
    spec = spec_for(ctx.device)
    if spec is not None and spec.chip_link_gbs and group.world_size > 1 and group.single_host:
        efficiency = best.busbw_gbps / spec.chip_link_gbs
        metrics.append(Metric(name="efficiency", value=efficiency, unit="ratio",
                              threshold=float(p["warn_efficiency"])))
        status = judge_efficiency(efficiency, float(p["warn_efficiency"]), float(p["fail_efficiency"]))
        if status is not Status.PASS:
            problems.append(f"only {efficiency:.0%} of the {spec.model}'s {spec.chip_link_gbs:g} GB/s chip-to-chip "
                            f"bandwidth (spec sheet)")
    slow_sizes = _straggling_sizes(results, float(p["straggler_margin"]))
    mine = slow_sizes.get(group.rank, [])
    if len(mine) >= max(2, 0.75 * len(results)):  # consistently: at most sizes, not one noisy size
        status = Status.WARN if status is Status.PASS else status
        ratio = max(ratio for _, ratio in mine)
        problems.append(f"this rank's own calls were the slowest at {len(mine)} of {len(results)} sizes (up to "
                        f"{ratio:.2f}x the other ranks' median)")
    if problems:
        return CheckOutcome(status, f"{summary}; {'; '.join(problems)}.", metrics)
    return CheckOutcome(Status.PASS, f"{summary}; every checked call was bit-exact.", metrics)


def declare_collective(op: str, module: str, *, title: str, doc: CheckDoc) -> Callable[[CheckContext], CheckOutcome]:
    """Register interconnect.<op> from the check module `module`: the sweep, judged by `collective_outcome`."""

    def run(ctx: CheckContext) -> CheckOutcome:
        return collective_outcome(ctx, op, sweep(ctx, op))

    run.__module__, run.__name__, run.__qualname__ = module, f"check_{op}", f"check_{op}"
    return register_check(id=f"interconnect.{op}", title=title, levels=("standard", "full"), doc=doc,
                          params=collective_params(), timeout_s=300.0, distributed=True,
                          min_ranks=2 if op == "send_recv" else 1)(run)
