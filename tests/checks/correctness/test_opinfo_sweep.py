import sys

import pytest
import torch
import yaml
from pydantic import ValidationError
from torch.overrides import TorchFunctionMode

from acceldoctor.checks.correctness import _opinfo as oi
from acceldoctor.checks.registry import get_check
from acceldoctor.checks.tolerances import load_tolerances
from acceldoctor.runner.worker import Task, run_task

pytest.importorskip("expecttest")
LOW_PRECISION = (torch.float32, torch.bfloat16, torch.float16)


def _metrics(result):
    return {(m["name"], m["dtype"]): m["value"] for m in result["metrics"]}


class WrongAdd(TorchFunctionMode):
    """torch.add on the device dtypes returns a wrong last element (the float64 reference is left alone)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.add and isinstance(out, torch.Tensor) and out.dtype in LOW_PRECISION and out.numel():
            out = out.clone()
            flat = out.view(-1)
            flat[-1] = flat[-1] + out.abs().max() + 1
        return out


def test_sweep_is_full_level_only_with_a_timeout_above_its_budget():
    spec = get_check("correctness.opinfo_sweep")
    assert spec.levels == ("full",)
    assert spec.timeout_s > spec.params_for("full")["time_budget_s"] + 60


def test_healthy_cpu_add_and_mul_pass_in_every_dtype():
    result = run_task(Task("correctness.opinfo_sweep", "cpu", "full", params={"ops": "add,mul"}))
    assert result["status"] == "pass", result["message"]
    m = _metrics(result)
    assert m[("ops_selected", None)] == 2 and m[("ops_passed", None)] == 2 and m[("ops_failed", None)] == 0
    for dtype in ("float32", "bfloat16", "float16"):
        assert m[("outputs_compared", dtype)] > 0
        assert m[("worst_error_to_tolerance", dtype)] < 0.5


def test_wrong_add_kernel_is_reported_with_dtype_and_element():
    with WrongAdd():
        result = run_task(Task("correctness.opinfo_sweep", "cpu", "full", params={"ops": "add,mul"}))
    assert result["status"] == "fail"
    m = _metrics(result)
    assert m[("ops_failed", None)] == 1 and m[("ops_passed", None)] == 1
    for dtype in ("float32", "bfloat16", "float16"):
        assert m[("failed_ops", dtype)] == 1
    message = result["message"]
    assert "1 operator(s) give wrong results: add in " in message
    assert "mul in" not in message
    assert "element [" in message and "ULPs" in message and "sample " in message


def test_exhausted_time_budget_warns_that_coverage_is_partial():
    result = run_task(Task("correctness.opinfo_sweep", "cpu", "full", params={"ops": "add,mul", "time_budget_s": 0}))
    assert result["status"] == "warn"
    assert "coverage is partial" in result["message"]
    assert _metrics(result)[("ops_not_reached", None)] == 2


def test_random_and_uninitialized_ops_are_excluded_not_compared():
    result = run_task(Task("correctness.opinfo_sweep", "cpu", "full", params={"ops": "randn,bernoulli,empty"}))
    assert result["status"] == "skip", result["message"]
    assert _metrics(result)[("ops_excluded", None)] == 3


def test_unknown_op_filter_is_an_error():
    result = run_task(Task("correctness.opinfo_sweep", "cpu", "full", params={"ops": "no_such_op_*"}))
    assert result["status"] == "error"
    assert "no_such_op_*" in result["message"]


def test_missing_operator_database_skips_with_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.testing._internal.common_methods_invocations", None)
    result = run_task(Task("correctness.opinfo_sweep", "cpu", "full", params={"ops": "add"}))
    assert result["status"] == "skip"
    assert "acceldoctor[full]" in result["message"] and "expecttest" in result["message"]


def test_loading_the_database_leaves_this_process_as_it_was():
    argv = list(sys.argv)
    oi.load_op_db()
    assert sys.argv == argv
    assert not torch.backends.flags_frozen()
    torch.backends.cudnn.allow_tf32 = torch.backends.cudnn.allow_tf32  # would raise if flags stayed frozen


def test_shipped_exclusion_file_is_valid_and_its_tolerances_exist():
    loaded = oi._load()
    assert loaded.exclusions
    for choice in loaded.tolerances:
        assert choice.tolerance in load_tolerances()
    assert oi.exclusion_for("randn", None, "cuda") is not None
    # a dtype- and device-specific exclusion never removes the op elsewhere
    assert oi.exclusion_for("matrix_exp", None, "cpu") is None
    assert oi.exclusion_for("matrix_exp", "float16", "cpu") is not None
    assert oi.exclusion_for("matrix_exp", "float16", "cuda") is None
    assert oi.tolerance_key("_upsample_bilinear2d_aa") == "opinfo_sweep.resampling"
    assert oi.tolerance_key("add") == "opinfo_sweep"


@pytest.mark.parametrize("entry", [
    {"ops": ["x"], "reason": "too short"},
    {"ops": [], "reason": "a reason that is long enough to pass"},
    {"ops": ["x"], "reason": "a reason that is long enough to pass", "dtypes": ["float64"]},
    {"ops": ["x"], "reason": "a reason that is long enough to pass", "typo": 1},
])
def test_exclusion_schema_rejects_bad_entries(entry):
    text = yaml.safe_dump({"schema": oi.EXCLUSIONS_SCHEMA, "exclusions": [entry]})
    with pytest.raises(ValidationError):
        oi.parse_exclusions(text)


def test_perturbation_moves_every_float_input_by_one_rounding():
    reference = (torch.tensor([1.0, -2.0, 4.0], dtype=torch.float64), (0.5, 3), {"alpha": 2.0})
    eps = 2.0**-10
    moved = oi.perturbed(reference, eps, torch.Generator().manual_seed(0))
    ratios = moved[0] / reference[0]
    assert torch.all((ratios - 1).abs() == eps)
    assert abs(moved[1][0] / 0.5 - 1) == eps and moved[1][1] == 3  # ints (sizes, dims) are left alone
    assert abs(moved[2]["alpha"] / 2.0 - 1) == eps


def test_injected_fp16_gemm_fault_is_caught_while_the_float64_reference_stays_clean():
    result = run_task(Task("correctness.opinfo_sweep", "cpu", "full", params={"ops": "matmul,mm"},
                           fault="matmul-wrong-fp16"))
    assert result["status"] == "fail"
    m = _metrics(result)
    assert m[("failed_ops", "float16")] == 2
    assert m[("failed_ops", "float32")] == 0 and m[("failed_ops", "bfloat16")] == 0
