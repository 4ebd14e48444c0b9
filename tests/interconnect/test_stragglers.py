"""find_stragglers on synthetic timings, and on local-compute timings of a real 4-rank gloo group, one rank slowed."""

import random
import time

import pytest

from acceldoctor.interconnect.launch import launch_local
from acceldoctor.interconnect.stragglers import (
    find_stragglers,
    gather_rank_times,
    robust_sd,
    time_local_compute,
)

GROUP_TIMEOUT_S = 30  # no collective may wait longer, so a broken test fails instead of hanging
SLOW_RANK = 2
SLOW_RANK_DELAY_S = 0.02
MATMUL_SIZE = 128  # well under a scheduler time slice on 2 shared cores, so most repeats run uninterrupted


def _noisy(median: float, repeats: int, rng: random.Random, noise: float = 0.1) -> list[float]:
    return [median * (1 + rng.uniform(-noise, noise)) for _ in range(repeats)]


def test_robust_sd_ignores_one_outlier():
    assert robust_sd([1.0, 2.0, 3.0, 4.0, 1000.0]) == pytest.approx(1.4826)
    assert robust_sd([5.0]) == 0.0


def test_names_the_slowed_rank():
    rng = random.Random(1)
    times = {rank: _noisy(0.010, 15, rng) for rank in range(8)}
    times[5] = _noisy(0.015, 15, rng)
    [straggler] = find_stragglers(times, margin=0.2)
    assert straggler.rank == 5 and straggler.ratio == pytest.approx(1.5, rel=0.1)
    assert straggler.median_s == pytest.approx(0.015, rel=0.1)
    assert straggler.others_median_s == pytest.approx(0.010, rel=0.1)


@pytest.mark.parametrize("seed", range(20))
def test_healthy_noisy_ranks_are_not_flagged(seed):
    rng = random.Random(seed)
    per_rank_noise = {rank: rng.uniform(-0.1, 0.1) for rank in range(8)}  # ranks differ by up to +-10% too
    times = {rank: _noisy(0.010 * (1 + skew), 7, rng) for rank, skew in per_rank_noise.items()}
    assert find_stragglers(times, margin=0.2) == []


def test_margin_keeps_a_quiet_group_from_flagging_a_small_difference():
    times = {rank: [0.0100 + rank * 1e-6] * 5 for rank in range(6)}
    times[3] = [0.0115] * 5  # 15% slower: far beyond the (tiny) spread, but within a 20% margin
    assert find_stragglers(times, margin=0.2) == []
    assert [s.rank for s in find_stragglers(times, margin=0.1)] == [3]


def test_robust_sds_keep_a_noisy_group_from_flagging_its_spread():
    medians = [0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.45]  # a wide spread, the slowest 45% above the others
    times = {rank: [m] for rank, m in enumerate(medians)}
    assert find_stragglers(times, margin=0.2) == []  # 0.45 above is within 3 x 0.30 robust SD
    assert [s.rank for s in find_stragglers(times, margin=0.2, k=1.4)] == [7]


def test_two_ranks_or_fewer_name_no_one():
    assert find_stragglers({0: [1.0], 1: [5.0]}, margin=0.2) == []
    assert find_stragglers({0: [1.0]}, margin=0.2) == []
    assert find_stragglers({0: [1.0], 1: []}, margin=0.2) == []


def test_local_compute_times_each_repeat():
    times = time_local_compute("cpu", 3, size=32)
    assert len(times) == 3 and all(t > 0 for t in times)


def slow_down() -> None:
    time.sleep(SLOW_RANK_DELAY_S)


def _local_compute_times(ctx):
    """On each rank: time the local compute step (rank SLOW_RANK slowed); every rank's times, gathered."""
    try:
        times = time_local_compute(ctx.device, 9, size=MATMUL_SIZE, fault=slow_down if ctx.rank == SLOW_RANK else None)
        return gather_rank_times(times)
    except Exception as exc:  # reported to the test rather than lost in a child's stderr
        return f"{type(exc).__name__}: {exc}"


def _run_group(world_size: int):
    """Local-compute times of every rank, as rank 0 gathered them, or None when the group did not finish."""
    outcome = launch_local(world_size, _local_compute_times, group_timeout_s=GROUP_TIMEOUT_S, deadline_s=120)
    return outcome.results.get(0)


def test_a_rank_slowed_in_local_compute_is_the_straggler():
    times = _run_group(4)
    assert times is not None, "the group produced no result"
    assert not isinstance(times, str), times
    assert sorted(times) == [0, 1, 2, 3] and all(len(t) == 9 for t in times.values())
    stragglers = find_stragglers(times, margin=0.5)
    assert [s.rank for s in stragglers] == [SLOW_RANK], times
    assert stragglers[0].median_s > SLOW_RANK_DELAY_S
