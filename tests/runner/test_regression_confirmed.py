"""A result made worse by the judge (a baseline regression) is measured again; only a repeated regression stands."""

import pytest

from acceldoctor.checks.registry import select_checks
from acceldoctor.devices.discovery import list_devices, resolve_devices
from acceldoctor.devices.versions import host_info
from acceldoctor.report.model import Result, Status
from acceldoctor.runner.pool import WorkerPool
from acceldoctor.runner.session import plan, run_plan


@pytest.fixture(scope="module")
def pool():
    with WorkerPool() as shared:
        yield shared


def _run(pool, judge):
    devices = resolve_devices("cpu", list_devices())
    planned = plan([s for s in select_checks("quick") if s.id == "environment.memory_alloc"], devices)
    report = run_plan(planned, level="quick", host=host_info(), devices=devices, judge=judge, pool=pool)
    [result] = report.results
    return report, result


def _flagging(times: int):
    """A judge that calls the first `times` measurements a regression, and every later one fine."""
    seen: list[Result] = []

    def judge(result: Result, device) -> Result:
        seen.append(result)
        if len(seen) > times:
            return result
        return result.model_copy(update={"status": Status.FAIL, "message": f"slower than the baseline #{len(seen)}."})

    return judge, seen


def test_a_regression_seen_once_counts_as_noise(pool):
    judge, seen = _flagging(times=1)
    report, result = _run(pool, judge)
    assert len(seen) == 2
    assert result.status is Status.PASS and report.exit_code == 0
    assert "first measurement was judged fail: slower than the baseline #1" in result.message
    assert "counts as noise" in result.message


def test_a_regression_seen_twice_stands(pool):
    judge, seen = _flagging(times=2)
    report, result = _run(pool, judge)
    assert len(seen) == 2
    assert result.status is Status.FAIL and report.exit_code == 1
    assert result.message == "slower than the baseline #1. Confirmed by a second measurement."


def test_a_result_the_judge_leaves_alone_is_measured_once(pool):
    judge, seen = _flagging(times=0)
    _, result = _run(pool, judge)
    assert len(seen) == 1 and result.status is Status.PASS
