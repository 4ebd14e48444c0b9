"""interconnect.p2p: bandwidth and latency of every ordered pair of ranks, with slow and corrupting links named.

The measurement is interconnect/p2p.py. Each rank's result carries its own row of the matrix (what it sent
to each peer) as metrics, so the terminal can print the whole matrix from the report alone.
"""

from __future__ import annotations

import statistics

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.interconnect._collective import MIB, human_bytes
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.interconnect.p2p import P2PMatrix, measure_p2p_matrix
from acceldoctor.report.model import Metric, Status

SLOW_MARGIN = 0.5
# Measured on 2 shared cores with 3-4 ranks and 3 busy processes beside them: healthy pairs down to 40% of the
# median (the pair whose ranks share a core with the busy ones), and a link held back 50 ms (faults/ranks.py) at 10%.
CPU_SLOW_MARGIN = 0.7


def schedule(world_size: int, all_pairs_up_to: int) -> list[tuple[int, int]] | None:
    """Every ordered pair for small groups (None); for large ones each rank's two ring neighbours, both ways."""
    if world_size <= all_pairs_up_to:
        return None
    pairs = {(r, (r + 1) % world_size) for r in range(world_size)}
    return sorted(pairs | {(d, s) for s, d in pairs})


def _row_metrics(matrix: P2PMatrix, rank: int) -> list[Metric]:
    metrics = []
    for dst in range(matrix.world_size):
        bandwidth = matrix.bandwidth[rank][dst]
        if dst == rank or bandwidth != bandwidth:  # the diagonal, or a pair not measured (nan)
            continue
        metrics.append(Metric(name=f"bandwidth_gbps_to_rank{dst}", value=bandwidth, unit="GB/s"))
        metrics.append(Metric(name=f"latency_us_to_rank{dst}", value=matrix.latency_us[rank][dst], unit="us"))
        if matrix.wrong[rank][dst]:
            metrics.append(Metric(name=f"wrong_elements_to_rank{dst}", value=matrix.wrong[rank][dst], unit="count",
                                  threshold=0))
    return metrics


def slow_margin(setting, device_type: str) -> float:
    if setting != "auto":
        return float(setting)
    return CPU_SLOW_MARGIN if device_type == "cpu" else SLOW_MARGIN


@register_check(
    id="interconnect.p2p",
    title="Point-to-point bandwidth and latency of every pair of ranks",
    levels=("standard", "full"),
    distributed=True,
    min_ranks=2,
    timeout_s=300.0,
    doc=CheckDoc(
        verifies=("Each ordered pair of ranks, one pair at a time: the bandwidth of one large transfer and the "
                  "latency of a small ping-pong, with every payload checked bit-exactly. Pairs far below the "
                  "median bandwidth of all pairs are named as slow links. When one is found the matrix is measured "
                  "a second time and each link keeps the faster of its two bandwidths: a degraded link is slow "
                  "every time, while a burst of other load seldom hits the same pair twice."),
        why=("One degraded link (a cable, a port trained down to fewer lanes, a switch port) slows every "
             "collective that crosses it, yet averages over the whole group hide it. Testing pairs alone names it."),
        failure_means=("`warn`: a link is much slower than the others (the sender's result names the pair). "
                       "`fail`: data sent over a link arrived wrong."),
        remedy=("Re-seat or replace the named link's cable or port; check the link's trained width and speed "
                "(`nvidia-smi nvlink -s`, `rocm-smi --showtopo`, `hccn_tool -i N -link -g`, `ibstat`); re-run to "
                "see whether the same pair is slow again."),
    ),
    params=(
        Param("size_bytes", 4 * MIB, "Bytes of the bandwidth transfer.", per_level={"full": 64 * MIB}, minimum=1),
        Param("latency_bytes", 8, "Bytes of each ping and pong.", minimum=1),
        Param("warmup", 1, "Untimed transfers per pair.", minimum=0),
        Param("repeats", 5, "Timed transfers per pair; the median is reported.", minimum=3),
        Param("slow_margin", "auto", "A pair is slow below (1 - this) x the median bandwidth of all pairs (and "
              "beyond 3 robust standard deviations of their logarithms). auto: 0.5, and 0.7 on the CPU, whose "
              "ranks talk through the host's memory, where the scheduler of shared cores, not a link, sets the "
              "pace.", choices=("auto",), minimum=0, maximum=1),
        Param("all_pairs_up_to", 16, "Measure every ordered pair up to this many ranks; above it each rank's ring "
              "neighbours only (the pairs grow as the square of the ranks).", minimum=2),
    ),
)
def check_p2p(ctx: CheckContext) -> CheckOutcome:
    group, p = ctx.group, ctx.params
    margin = slow_margin(p["slow_margin"], ctx.device.type)

    def measure() -> P2PMatrix:
        return measure_p2p_matrix(int(p["size_bytes"]), device=ctx.device, warmup=int(p["warmup"]),
                                  repeats=int(p["repeats"]), latency_bytes=int(p["latency_bytes"]),
                                  pairs=schedule(group.world_size, int(p["all_pairs_up_to"])))

    matrix = measure()
    # every rank holds the same matrix, so every rank takes the same branch (and joins the same transfers)
    remeasured = bool(matrix.slow_links(margin))
    if remeasured:
        matrix = matrix.faster_of_each_link(measure())
    bandwidths = [link.bandwidth_gbps for link in matrix.links]
    latencies = [link.latency_us for link in matrix.links]
    metrics = _row_metrics(matrix, group.rank) + [
        Metric(name="median_bandwidth_gbps", value=statistics.median(bandwidths), unit="GB/s"),
        Metric(name="median_latency_us", value=statistics.median(latencies), unit="us"),
        Metric(name="pairs", value=len(matrix.links), unit="count"),
    ]
    summary = (f"{len(matrix.links)} ordered pairs over {group.world_size} ranks ({matrix.backend}): median "
               f"{statistics.median(bandwidths):.3g} GB/s at {human_bytes(matrix.size_bytes)} "
               f"(slowest {min(bandwidths):.3g}, fastest {max(bandwidths):.3g}), median latency "
               f"{statistics.median(latencies):.3g} us")
    if remeasured:
        summary += "; measured twice, the faster of each pair kept"
    corrupt = [(s, d, matrix.wrong[s][d]) for s in range(group.world_size) for d in range(group.world_size)
               if matrix.wrong[s][d]]
    if corrupt:
        worst = ", ".join(f"{group.describe(s)} -> rank {d}: {c} wrong bytes" for s, d, c in corrupt[:4])
        more = f" and {len(corrupt) - 4} more pair(s)" if len(corrupt) > 4 else ""
        if any(group.rank in (s, d) for s, d, _ in corrupt):
            return CheckOutcome(Status.FAIL, f"data arrived wrong over {len(corrupt)} link(s): {worst}{more}; "
                                f"{summary}.", metrics)
        return CheckOutcome(Status.PASS, f"this rank's links are sound; elsewhere data arrived wrong: {worst}{more}; "
                            f"{summary}.", metrics)
    slow = matrix.slow_links(margin)
    if slow:
        median = statistics.median(bandwidths)
        named = ", ".join(f"{group.describe(s)} -> {group.describe(d)} at {matrix.bandwidth[s][d]:.3g} GB/s "
                          f"({matrix.bandwidth[s][d] / median:.0%} of the median)" for s, d in slow)
        if any(s == group.rank for s, _ in slow):
            return CheckOutcome(Status.WARN, f"slow link(s): {named}; {summary}.", metrics)
        return CheckOutcome(Status.PASS, f"this rank's links are not slow; slow link(s) elsewhere: {named}; {summary}.",
                            metrics)
    verdict = "no link slow twice" if remeasured else "no slow link"
    return CheckOutcome(Status.PASS, f"{summary}; {verdict}, every payload bit-exact.", metrics)
