"""determinism.reduction: sums repeat bit for bit on a healthy CPU; last-bit noise fails; atomics only warn."""

import importlib

import torch

from acceldoctor.checks.registry import get_check
from acceldoctor.runner.worker import Task, run_task

CHECK = "determinism.reduction"


def _module():
    # Through the registry: importing the check module first would leave the registry half-filled.
    return importlib.import_module(get_check(CHECK).module)


def _metrics(result):
    return {m["name"]: m["value"] for m in result["metrics"]}


def test_healthy_cpu_repeats_every_reduction_bit_for_bit():
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "pass", result["message"]
    metrics = _metrics(result)
    assert metrics["mismatching_runs"] == 0 and metrics["repetitions"] >= 10
    assert metrics["deterministic_mode"] == int(torch.are_deterministic_algorithms_enabled())


def test_nondeterministic_sum_fails_and_names_op_repetition_and_values():
    result = run_task(Task(CHECK, "cpu", "quick", fault="nondeterministic-sum"))
    assert result["status"] == "fail"
    message = result["message"]
    assert message.startswith(("sum ", "mean ")) and "repetition 2 of " in message and " instead of " in message
    assert _metrics(result)["mismatching_runs"] >= 1


def test_last_bit_noise_fails_here_while_correctness_reductions_still_passes():
    noisy = run_task(Task(CHECK, "cpu", "quick", fault="nondeterministic-sum"))
    assert noisy["status"] == "fail", noisy["message"]
    # The values themselves stay correct to within rounding: only the determinism check may object.
    values = run_task(Task("correctness.reductions", "cpu", "quick", fault="nondeterministic-sum"))
    assert values["status"] == "pass", values["message"]


def _flaky_index_add(x, index):
    """index_add_ whose last bits change from call to call, as atomics on an accelerator may."""
    out = torch.zeros(17, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, index, x)
    _flaky_index_add.calls += 1
    return out + (_flaky_index_add.calls % 2) * torch.finfo(x.dtype).eps * out.abs()


_flaky_index_add.calls = 0


def test_varying_atomics_based_op_warns_on_an_accelerator_but_fails_on_cpu(monkeypatch):
    reduction = _module()
    monkeypatch.setitem(reduction.OPS, "index_add_ dim=0", (_flaky_index_add, True))
    on_cpu = run_task(Task(CHECK, "cpu", "quick"))
    assert on_cpu["status"] == "fail" and on_cpu["message"].startswith("index_add_ dim=0 of ")

    # The same kernel behaviour on an accelerator, without deterministic mode, is documented and only warns.
    monkeypatch.setattr(reduction, "_atomics_may_vary", lambda device: True)
    on_device = run_task(Task(CHECK, "cpu", "quick"))
    assert on_device["status"] == "warn", on_device["message"]
    assert "index_add_" in on_device["message"] and "use_deterministic_algorithms" in on_device["message"]
