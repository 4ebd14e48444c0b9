"""Every injectable fault is caught by the check that should catch it, with the right status."""

import pytest
import torch

from acceldoctor.baseline.baseline import build_baseline, judge_against_baseline
from acceldoctor.baseline.rules import load_baseline_rules
from acceldoctor.checks.registry import all_checks
from acceldoctor.devices.discovery import list_devices, resolve_devices
from acceldoctor.devices.versions import host_info
from acceldoctor.faults import injected
from acceldoctor.faults.catalog import FAULTS, UnknownFault, get_fault
from acceldoctor.report.model import Status
from acceldoctor.runner.pool import WorkerPool
from acceldoctor.runner.session import plan, run_plan
from acceldoctor.runner.worker import Task

# Small enough to keep the baseline runs short, large enough that a product is not lost in timer noise.
BASELINE_RUN_PARAMS = {"performance.gemm": {"sizes": [256], "repeats": 5, "warmup": 1}}


@pytest.fixture(scope="module")
def pool():
    with WorkerPool() as shared:
        yield shared


@pytest.mark.parametrize("name", sorted(n for n, f in FAULTS.items() if not f.needs_baseline and not f.distributed))
def test_fault_is_caught_by_its_check(pool, name):
    fault = FAULTS[name]
    assert fault.caught_by in all_checks(), f"{name} names a check that does not exist"
    timeout = 10 if fault.expected_status == "timeout" else 300
    outcome = pool.run(Task(fault.caught_by, "cpu", "quick", fault=name), timeout_s=timeout)
    assert outcome["status"] == fault.expected_status, outcome["message"]
    assert Status(outcome["status"]).is_problem


def _run(pool, check: str, fault: str | None = None, judge=None):
    devices = resolve_devices("cpu", list_devices())
    planned = plan([all_checks()[check]], devices, BASELINE_RUN_PARAMS)
    return run_plan(planned, level="standard", host=host_info(), devices=devices, fault=fault, judge=judge,
                    pool=pool)


@pytest.mark.parametrize("name", sorted(n for n, f in FAULTS.items() if f.needs_baseline))
def test_fault_is_caught_against_a_baseline_of_healthy_runs(pool, name):
    fault = FAULTS[name]
    baseline = build_baseline([_run(pool, fault.caught_by) for _ in range(3)])
    rules = load_baseline_rules()

    def judge(result, device):
        return judge_against_baseline(result, device.name, baseline, rules)

    without_baseline = _run(pool, fault.caught_by, fault=name)
    assert without_baseline.results[0].status is Status.PASS  # a slowdown alone proves nothing
    [result] = _run(pool, fault.caught_by, fault=name, judge=judge).results
    assert result.status.value == fault.expected_status, result.message
    assert "baseline" in result.message and "Confirmed by a second measurement" in result.message


def test_slow_fault_takes_its_percentage_and_refuses_nonsense():
    assert get_fault("slow-matmul").percent == 25
    assert get_fault("slow-matmul:40").percent == 40 and get_fault("slow-matmul").percent == 25
    assert get_fault("bitflip:300").every == 300 and get_fault("bitflip").every == 50
    for bad, reason in [("slow-matmul:fast", "not a percentage"), ("slow-matmul:0", "between 0 and 1000"),
                        ("bitflip:often", "not a whole number"), ("softmax-nan:3", "takes no argument")]:
        with pytest.raises(UnknownFault, match=reason):
            get_fault(bad)


def test_faults_only_touch_the_device_under_test_not_the_reference():
    from acceldoctor.faults import suspended

    x = torch.full((2, 70), 100.0)
    with injected("softmax-nan"):
        assert torch.isnan(torch.softmax(x, dim=-1)).all()
        with suspended():
            assert not torch.isnan(torch.softmax(x, dim=-1)).any()
    assert not torch.isnan(torch.softmax(x, dim=-1)).any()


def test_unknown_fault_name_is_refused():
    with pytest.raises(UnknownFault, match="known faults"), injected("gremlins"):
        pass
