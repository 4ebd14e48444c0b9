"""Each fault of one rank, injected into a real gloo group of CPU ranks, is caught by its check and names the rank."""

import time

import pytest

from acceldoctor.checks.registry import all_checks
from acceldoctor.devices.discovery import list_devices, resolve_devices
from acceldoctor.devices.versions import host_info
from acceldoctor.faults.catalog import FAULTS, UnknownFault, get_fault
from acceldoctor.report.model import Status
from acceldoctor.runner.distributed import RankLayout
from acceldoctor.runner.session import DistributedRun, plan, run_plan

SMALL = {"min_bytes": 1024, "max_bytes": 64 * 1024, "repeats": 3, "warmup": 1}
GROUP_TIMEOUT_S = 10.0


def _run(check: str, nproc: int, fault: str | None):
    devices = resolve_devices("cpu", list_devices())
    overrides = {check: SMALL} if check.split(".")[1] not in ("p2p", "stragglers") else {}
    planned = plan([all_checks()[check]], devices, overrides)
    begin = time.monotonic()
    report = run_plan(planned, level="standard", host=host_info(), devices=devices, fault=fault,
                      distributed=DistributedRun(RankLayout(nproc, "cpu", group_timeout_s=GROUP_TIMEOUT_S)))
    return report, time.monotonic() - begin


@pytest.mark.parametrize("name", sorted(n for n, f in FAULTS.items() if f.distributed))
def test_rank_fault_is_caught_and_the_rank_named(name):
    base = FAULTS[name]
    # A slow link is told from the spread of all pairs: four ranks (12 pairs) keep that spread steady on a busy host.
    nproc = 4 if name == "slow-link" else max(base.ranks_needed, 3)
    # The last rank (or the pair ending at it) rather than the default, so the naming cannot be a coincidence.
    fault = f"{name}:{nproc - 2}-{nproc - 1}" if name == "slow-link" else f"{name}:{nproc - 1}"
    culprit = get_fault(fault).rank
    report, seconds = _run(base.caught_by, nproc, fault)
    mine = [r for r in report.results if r.rank == culprit]
    assert [r.status.value for r in mine] == [base.expected_status], [r.message for r in report.results]
    assert f"rank {culprit} (host " in mine[0].message
    # a link or a straggler is named only when a second measurement finds it slow again
    if name == "slow-link":
        assert "measured twice, the faster of each pair kept" in mine[0].message
    if name == "slow-rank":
        assert "timed twice" in mine[0].message
    assert report.exit_code == (1 if Status(base.expected_status).is_problem else 0)
    assert seconds < 120  # a dead or hung rank ends the run within the group timeout, not never
    others = [r for r in report.results if r.rank != culprit]
    if base.expected_status in ("crash", "timeout"):
        # the survivors say who stopped, and how
        kind = "died" if base.expected_status == "crash" else "hung"
        assert others and all(r.status is Status.ERROR and f"rank {culprit} (host" in r.message and kind in r.message
                              for r in others), [r.message for r in others]


@pytest.mark.parametrize("check", ["interconnect.all_reduce", "interconnect.p2p", "interconnect.stragglers"])
def test_healthy_group_passes(check):
    report, _ = _run(check, 3, None)
    assert len(report.results) == 3 and {r.rank for r in report.results} == {0, 1, 2}
    assert all(r.status is Status.PASS for r in report.results), [r.message for r in report.results]


@pytest.mark.parametrize("name, problem", [
    ("corrupt-rank:x", "not a rank number"),
    ("slow-link:1-1", "two different ranks"),
    ("slow-link:1", "not a pair of ranks"),
    ("die-rank:-1", "0 or more"),
])
def test_bad_rank_fault_settings_are_refused(name, problem):
    with pytest.raises(UnknownFault, match=problem):
        get_fault(name)
