"""Every quick-level check passes on a healthy CPU; those judged by tolerances in every dtype, with margin.

Checks with healthy assertions beyond this one (specific metrics, counts) keep them in their own test files.
"""

import pytest

from acceldoctor.checks.registry import select_checks
from acceldoctor.runner.worker import Task, run_task

DTYPES = {"float32", "bfloat16", "float16"}  # exactly what a CPU supports (tests/checks/test_dtypes.py)
MARGIN = 0.5  # a healthy device stays well inside its tolerance: worst error / tolerance below this

QUICK = select_checks("quick")


@pytest.mark.parametrize("spec", QUICK, ids=[spec.id for spec in QUICK])
def test_healthy_cpu_passes_at_quick_level(spec, metric_by_dtype):
    result = run_task(Task(spec.id, "cpu", "quick"))
    assert result["status"] == "pass", result["message"]
    cases = metric_by_dtype(result, "cases")
    if spec.tolerances:  # judged against a float64 golden: must say per dtype how many cases it compared
        assert cases, f"{spec.id} declares tolerances but reports no `cases` per dtype"
    if cases:
        assert set(cases) == DTYPES, cases
        worst = metric_by_dtype(result, "worst_error_to_tolerance")
        assert set(worst) == DTYPES, worst
        assert max(worst.values()) < MARGIN, worst
