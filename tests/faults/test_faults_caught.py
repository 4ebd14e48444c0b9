"""Every injectable fault is caught by the check that should catch it, with the right status."""

import pytest
import torch

from acceldoctor.checks.registry import all_checks
from acceldoctor.faults import injected
from acceldoctor.faults.catalog import FAULTS, UnknownFault
from acceldoctor.report.model import Status
from acceldoctor.runner.pool import WorkerPool
from acceldoctor.runner.worker import Task


@pytest.fixture(scope="module")
def pool():
    with WorkerPool() as shared:
        yield shared


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_is_caught_by_its_check(pool, name):
    fault = FAULTS[name]
    assert fault.caught_by in all_checks(), f"{name} names a check that does not exist"
    timeout = 10 if fault.expected_status == "timeout" else 300
    outcome = pool.run(Task(fault.caught_by, "cpu", "quick", fault=name), timeout_s=timeout)
    assert outcome["status"] == fault.expected_status, outcome["message"]
    assert Status(outcome["status"]).is_problem


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
