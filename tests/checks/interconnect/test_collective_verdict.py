"""How one rank's verdict is drawn from a collective's sweep: exactness, spec-sheet bandwidth, its own slowness."""

import pytest
import torch

from acceldoctor.baseline.spec_sheets import lookup
from acceldoctor.checks.context import CheckContext, SkipCheck
from acceldoctor.checks.interconnect import _collective
from acceldoctor.checks.interconnect._collective import collective_outcome
from acceldoctor.checks.registry import get_check
from acceldoctor.interconnect.collectives import CollectiveResult, RankOutcome
from acceldoctor.interconnect.group import GroupView, RankInfo
from acceldoctor.report.model import Status

N = 4


def _ctx(rank=0, hosts=("a",) * N):
    view = GroupView(rank, N, "nccl", [RankInfo(r, hosts[r], f"cuda:{r}") for r in range(N)])
    params = get_check("interconnect.all_reduce").params_for("standard")
    return CheckContext(device=torch.device("cpu"), level="standard", params=params, group=view)


def _result(size, seconds, *, wrong=None, slow_rank=None, unsupported=""):
    wrong = wrong or {}
    ranks = []
    for r in range(N):
        # spread around `seconds`, whose median it stays
        times = tuple(seconds * (3.0 if r == slow_rank else 1.0) * (1 + 0.01 * (i - 4.5)) for i in range(10))
        by_source = {2: wrong[r]} if wrong.get(r) else {}
        ranks.append(RankOutcome(r, times, 3, wrong.get(r, 0), by_source, 0))
    slowest = tuple(max(o.times_s[i] for o in ranks) for i in range(10))
    return CollectiveResult("all_reduce", "all_reduce", "nccl", N, "float32", size, size // 4, unsupported,
                            tuple(ranks), slowest if not unsupported else ())


def _sweep(busbw_at_largest_gbps):
    # busbw = size / t x 2(n-1)/n; pick t for the largest size to give the wanted figure
    big = 64 << 20
    return [_result(1024, 20e-6), _result(big, big / (busbw_at_largest_gbps * 1e9) * 2 * (N - 1) / N)]


@pytest.fixture
def h100(monkeypatch):
    monkeypatch.setattr(_collective, "spec_for", lambda device: lookup("NVIDIA H100 80GB HBM3"))


@pytest.mark.parametrize("busbw, status", [(400, Status.PASS), (150, Status.WARN), (50, Status.FAIL)])
def test_bus_bandwidth_is_judged_against_the_chip_to_chip_figure_of_the_spec_sheet(h100, busbw, status):
    outcome = collective_outcome(_ctx(), "all_reduce", _sweep(busbw))
    metrics = {m.name: m.value for m in outcome.metrics}
    assert metrics["busbw_gbps"] == pytest.approx(busbw)
    assert metrics["efficiency"] == pytest.approx(busbw / 450)
    assert outcome.status is status
    if status is not Status.PASS:
        assert "450 GB/s chip-to-chip" in outcome.message


def test_across_hosts_the_chip_link_is_not_the_limit_so_nothing_is_judged(h100):
    outcome = collective_outcome(_ctx(hosts=("a", "a", "b", "b")), "all_reduce", _sweep(50))
    assert outcome.status is Status.PASS and "efficiency" not in {m.name for m in outcome.metrics}


def test_without_a_spec_sheet_bandwidth_is_reported_only():
    outcome = collective_outcome(_ctx(), "all_reduce", _sweep(1))
    assert outcome.status is Status.PASS and "bit-exact" in outcome.message


def test_wrong_elements_fail_every_rank_naming_the_culprit():
    sweep = [_result(1024, 20e-6, wrong={0: 5, 1: 5, 3: 5})]
    outcome = collective_outcome(_ctx(rank=3), "all_reduce", sweep)
    assert outcome.status is Status.FAIL
    assert "traced to rank 2 (host a, device cuda:2) (15)" in outcome.message
    assert "this rank received 5" in outcome.message


def test_only_a_rank_slow_at_most_sizes_is_warned_and_only_on_its_own_result():
    sweep = [_result(1024 << i, 20e-6 * 2**i, slow_rank=1) for i in range(4)]
    outcome = collective_outcome(_ctx(rank=1), "all_reduce", sweep)
    assert outcome.status is Status.WARN and "slowest at 4 of 4 sizes" in outcome.message
    assert collective_outcome(_ctx(rank=0), "all_reduce", sweep).status is Status.PASS
    # slow at one size in four is noise, not a straggler
    noisy = [_result(1024, 20e-6, slow_rank=1)] + [_result(2048 << i, 40e-6 * 2**i) for i in range(3)]
    assert collective_outcome(_ctx(rank=1), "all_reduce", noisy).status is Status.PASS


def test_an_op_the_backend_lacks_is_skipped_with_its_reason():
    with pytest.raises(SkipCheck, match="cannot run all_reduce: not here"):
        collective_outcome(_ctx(), "all_reduce", [_result(1024, 0, unsupported="not here")])
