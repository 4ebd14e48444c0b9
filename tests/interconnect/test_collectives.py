"""measure_collective in real gloo process groups of 2 and 4 CPU ranks, healthy and with one rank sending bad data."""

import datetime
import math

import pytest
import torch
import torch.distributed as dist

from acceldoctor.interconnect import stats
from acceldoctor.interconnect.collectives import _SumCode, measure_collective
from acceldoctor.interconnect.launch import launch_local

SIZES = (4 * 1024, 64 * 1024)
WARMUP, REPEATS = 1, 3
CALLS = 1 + (WARMUP - 1) + 1  # checked: the implementation probe, the warm-ups but the last, the last timed call
GROUP_TIMEOUT_S = 30  # no collective may wait longer than this, so a broken test fails instead of hanging
FAULTY_RANK = 2


def add_one_to_first(tensor: torch.Tensor) -> None:
    tensor[0] += 1  # a wrong value: not attributable inside a sum


def zero_first(tensor: torch.Tensor) -> None:
    tensor[0] = 0  # a dropped contribution: attributable inside a sum


def _run_jobs(ctx, jobs: list) -> dict | None:
    """On each rank: every (op, size, fault) job; rank 0 returns its result per job."""
    collected = {}
    for key in jobs:
        op, size, fault = key
        input_fault = fault if fault is not None and ctx.rank == FAULTY_RANK else None
        try:
            result = measure_collective(op, size, device=ctx.device, warmup=WARMUP, repeats=REPEATS,
                                        input_fault=input_fault)
        except Exception as exc:  # reported to the test rather than lost in a child's stderr
            result = f"{type(exc).__name__}: {exc}"
        collected[key] = result
    return collected if ctx.rank == 0 else None


def _run_group(world_size: int, jobs: list) -> dict:
    """Run `jobs` (op, size, fault) on `world_size` spawned gloo ranks; rank 0's result per job."""
    outcome = launch_local(world_size, _run_jobs, (jobs,), group_timeout_s=GROUP_TIMEOUT_S, deadline_s=120)
    return outcome.results.get(0) or {}


def _healthy_jobs() -> list:
    return [(op, size, None) for op in stats.OPS for size in SIZES]


FAULT_JOBS = [(op, SIZES[0], add_one_to_first) for op in stats.OPS] + [
    ("all_reduce", SIZES[0], zero_first), ("reduce_scatter", SIZES[0], zero_first)]


@pytest.fixture(scope="module")
def two_ranks():
    return _run_group(2, _healthy_jobs())


@pytest.fixture(scope="module")
def four_ranks():
    return _run_group(4, _healthy_jobs() + FAULT_JOBS)


def _check_healthy(results: dict, world_size: int) -> None:
    for key in _healthy_jobs():
        result = results.get(key)
        assert result is not None, f"{key} produced no result"
        assert not isinstance(result, str), f"{key} raised: {result}"
        op, size, _ = key
        if not result.supported:  # allowed only with the backend's own words
            assert result.unsupported_reason and result.ranks[0].checked_calls == 0
            continue
        assert result.correct, (key, result.wrong_by_source, [r.wrong_elements for r in result.ranks])
        assert result.world_size == world_size and len(result.ranks) == world_size
        assert all(r.checked_calls == CALLS for r in result.ranks)
        assert len(result.times_s) == REPEATS and result.median_s > 0
        assert abs(result.size_bytes - size) < world_size * 4  # rounded down to whole per-rank chunks only
        assert math.isclose(result.busbw_gbps, result.algbw_gbps * stats.bus_factor(op, world_size))


def test_every_op_correct_on_two_gloo_ranks(two_ranks):
    _check_healthy(two_ranks, 2)
    # gloo runs these on CPU in the installed torch; a regression to "unsupported" would hide them
    assert all(two_ranks[(op, SIZES[0], None)].supported for op in ("all_reduce", "all_gather", "broadcast",
                                                                    "send_recv"))


def test_every_op_correct_on_four_gloo_ranks(four_ranks):
    _check_healthy(four_ranks, 4)


def _fault_result(four_ranks, op, fault):
    result = four_ranks[(op, SIZES[0], fault)]
    assert not isinstance(result, str), result
    return result


def test_all_gather_names_the_rank_that_sent_a_wrong_chunk(four_ranks):
    result = _fault_result(four_ranks, "all_gather", add_one_to_first)
    assert not result.correct
    # every rank receives rank 2's chunk, with one wrong element, on every checked call
    assert result.wrong_by_source == {FAULTY_RANK: 4 * CALLS}
    assert all(r.wrong_elements == CALLS and r.unattributed == 0 for r in result.ranks)


def test_point_to_point_ops_name_the_sender(four_ranks):
    # element 0 of rank 2's input: all_to_all delivers it to rank 0, the ring to rank 3
    for op, receiver in (("all_to_all", 0), ("send_recv", 3)):
        result = _fault_result(four_ranks, op, add_one_to_first)
        assert result.wrong_by_source == {FAULTY_RANK: CALLS}, op
        assert [r.wrong_elements for r in result.ranks] == [CALLS if r == receiver else 0 for r in range(4)], op


def test_all_reduce_counts_a_wrong_value_without_blaming_a_rank(four_ranks):
    result = _fault_result(four_ranks, "all_reduce", add_one_to_first)
    assert result.wrong_elements == 4 * CALLS and result.wrong_by_source == {}
    assert all(r.unattributed == CALLS for r in result.ranks)


def test_sums_name_the_rank_whose_contribution_is_missing(four_ranks):
    assert _fault_result(four_ranks, "all_reduce", zero_first).wrong_by_source == {FAULTY_RANK: 4 * CALLS}
    result = _fault_result(four_ranks, "reduce_scatter", zero_first)
    if result.supported:  # element 0 is reduced onto rank 0 only
        assert result.wrong_by_source == {FAULTY_RANK: CALLS}


def test_broadcast_ignores_a_fault_on_a_receiving_rank(four_ranks):
    assert _fault_result(four_ranks, "broadcast", add_one_to_first).correct


@pytest.mark.parametrize(("op", "factor"), [("all_reduce", 1.5), ("all_gather", 0.75), ("reduce_scatter", 0.75),
                                            ("all_to_all", 0.75), ("broadcast", 1.0), ("send_recv", 1.0)])
def test_bus_factors_follow_nccl_tests(op, factor):
    assert stats.bus_factor(op, 4) == factor
    assert stats.busbw_gbps(op, 2 * 10**9, 2.0, 4) == pytest.approx(factor)
    assert stats.algbw_gbps(2 * 10**9, 2.0) == pytest.approx(1.0)


def test_bus_factor_rejects_unknown_op():
    with pytest.raises(ValueError, match="all_reduce"):
        stats.bus_factor("allreduce", 2)


def test_chunked_ops_round_to_whole_chunks():
    assert stats.elements_for("all_gather", 4100, 4, 4) == 1024
    assert stats.elements_for("all_reduce", 4100, 4, 4) == 1025
    assert stats.elements_for("all_to_all", 1, 4, 8) == 8


def test_size_sweep_bounds():
    assert stats.size_sweep(1000, 2**14) == [1024, 2048, 4096, 8192, 16384]
    assert stats.size_sweep(1024, 2**30, free_memory_bytes=64 * 1024, buffers=4, memory_fraction=0.5) == [
        1024, 2048, 4096, 8192]
    # at 1 MB/s and 1 iteration: 1 KiB + 2 KiB + 4 KiB fit in 10 ms, 8 KiB more does not
    assert stats.size_sweep(1024, 2**20, time_budget_s=0.01, bytes_per_second=1e6, iterations=1) == [1024, 2048, 4096]


def test_sum_code_decodes_missing_and_doubled_ranks():
    code = _SumCode(4, torch.float32)
    values = code.values(6)
    expected = code.expected(values)
    assert float(expected.max()) < 2**24  # exact in float32
    received = expected.to(torch.float32).clone()
    received[0] -= float(code.contribution(1, values)[0])  # rank 1 missing
    received[1] += float(code.contribution(3, values)[1])  # rank 3 counted twice
    received[2] -= float(code.contribution(0, values)[2] + code.contribution(2, values)[2])  # ranks 0 and 2 missing
    received[3] += 1  # a wrong value
    received[4] = float("nan")
    received[5] += 2**10  # a flipped bit is never an odd multiple
    by_source, unattributed = code.attribute(received, expected, values)
    assert by_source == {0: 1, 1: 1, 2: 1, 3: 1} and unattributed == 3


def test_sum_code_gives_up_attribution_when_ranks_outnumber_exact_bits():
    code = _SumCode(64, torch.bfloat16)
    values = code.values(8)
    assert code.field_bits == 0 and float(code.expected(values).max()) <= 2**8


@pytest.fixture
def one_rank_group(tmp_path):
    """A one-rank gloo group in this process (file store: no port to race for)."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1,
                            timeout=datetime.timedelta(seconds=GROUP_TIMEOUT_S))
    yield
    dist.destroy_process_group()


def test_an_op_the_backend_lacks_is_reported_with_its_message(one_rank_group, monkeypatch):
    def lacking(*args, **kwargs):
        raise RuntimeError("ProcessGroupGloo does not support alltoall\nmore detail")

    monkeypatch.setattr(dist, "all_to_all_single", lacking)
    monkeypatch.setattr(dist, "all_to_all", lacking)
    result = measure_collective("all_to_all", 4096, device="cpu", warmup=1, repeats=2)
    assert not result.supported and not result.correct and result.times_s == ()
    assert "all_to_all_single failed on rank 0: RuntimeError: ProcessGroupGloo does not support alltoall" in (
        result.unsupported_reason)
    assert "more detail" not in result.unsupported_reason and result.algbw_gbps == 0.0


def test_a_failing_preferred_call_falls_back_to_the_list_variant(one_rank_group, monkeypatch):
    monkeypatch.setattr(dist, "all_gather_single", None, raising=False)
    monkeypatch.setattr(dist, "all_gather_into_tensor", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no")))
    result = measure_collective("all_gather", 4096, device="cpu", warmup=1, repeats=2)
    assert result.correct and result.implementation == "all_gather" and len(result.times_s) == 2


def test_send_recv_needs_two_ranks(one_rank_group):
    assert "at least 2 ranks" in measure_collective("send_recv", 4096, device="cpu").unsupported_reason
