"""Find ranks that are consistently slower than their peers (stragglers), robustly to ordinary noise.

One slow rank holds back every collective, so its cause (a throttled chip, a busy host, a slow link) is
worth naming. A rank is a straggler when its median time is slower than the median of the other ranks'
medians by more than a relative `margin` AND by more than `k` robust standard deviations of the ranks'
medians (1.4826 x MAD, which estimates the SD of normal noise without being pulled by the outlier itself).
The margin keeps a tight, quiet group from flagging a harmless 2% difference; the robust SD keeps a noisy
group from flagging its ordinary spread. With two ranks nothing is ever flagged: which of two differing
ranks is "the slow one" cannot be told from two numbers (the MAD then equals half their difference).

`time_local_compute` gives each rank a timing of the same fixed matmul, so ranks can be compared on local
compute alone, without any communication in the measurement.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from acceldoctor.devices.backends import synchronize

# MAD x 1.4826 estimates the standard deviation of normally distributed values.
MAD_TO_SD = 1.4826


def robust_sd(values: list[float]) -> float:
    """1.4826 x the median absolute deviation from the median: an SD estimate that one outlier cannot inflate."""
    if not values:
        return float("nan")
    center = statistics.median(values)
    return MAD_TO_SD * statistics.median(abs(v - center) for v in values)


@dataclass(frozen=True)
class Straggler:
    rank: int
    median_s: float  # this rank's median time
    others_median_s: float  # median of the other ranks' medians
    ratio: float  # median_s / others_median_s (> 1 + margin)


def find_stragglers(per_rank_times: dict[int, list[float]], margin: float, k: float = 3.0) -> list[Straggler]:
    """Ranks whose median time exceeds the others' by more than `margin` (relative) and `k` robust SDs.

    `per_rank_times` maps rank -> its repeated timings (seconds); ranks with no timings are ignored.
    Returned slowest first.
    """
    medians = {rank: statistics.median(times) for rank, times in per_rank_times.items() if times}
    if len(medians) < 2:
        return []
    spread = robust_sd(list(medians.values()))
    found = []
    for rank, median in medians.items():
        others = statistics.median(m for r, m in medians.items() if r != rank)
        excess = median - others
        if others > 0 and excess > margin * others and excess > k * spread:
            found.append(Straggler(rank, median, others, median / others))
    return sorted(found, key=lambda s: s.ratio, reverse=True)


def time_local_compute(device, repeats: int, *, size: int = 256, warmup: int = 1,
                       fault: Callable[[], None] | None = None) -> list[float]:
    """Seconds per repeat of one fixed `size` x `size` float32 matmul on `device` (host clock, synchronized).

    The work is the same on every rank and small (about 2 x size^3 FLOPs), so it is quick everywhere and
    the ranks' times are directly comparable. `fault`, when given, runs inside every timed repeat (before
    the matmul): a test's way to make one rank slow.
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(0)  # identical inputs on every rank: identical work
    a = torch.randn(size, size, generator=generator).to(device)
    b = torch.randn(size, size, generator=generator).to(device)
    times = []
    for i in range(warmup + repeats):
        synchronize(device)
        begin = time.perf_counter()
        if fault is not None:
            fault()
        torch.mm(a, b)
        synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - begin)
    return times


def gather_rank_times(times: list[float]) -> dict[int, list[float]]:
    """Every rank's `times`, by rank, on every rank of the initialized process group (all_gather_object)."""
    gathered: list[list[float] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, list(times))
    return {rank: list(t or []) for rank, t in enumerate(gathered)}
