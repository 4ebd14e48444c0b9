"""performance.launch_latency: microsecond figures on a healthy CPU; a slowed op fails; thresholds are parameters."""

import time

import torch
from torch.overrides import TorchFunctionMode

from acceldoctor.checks.registry import all_checks
from acceldoctor.cli.params import parse_param_overrides
from acceldoctor.runner.worker import Task, run_task

CHECK = "performance.launch_latency"
SMALL = {"launches": 50, "round_trips": 50, "repeats": 7, "warmup": 1}


class _SlowAdd(TorchFunctionMode):
    """Every torch.add sleeps `delay` seconds first: a host that takes milliseconds to launch a tiny op."""

    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.add:
            time.sleep(self.delay)
        return func(*args, **(kwargs or {}))


def _metrics(result):
    return {m["name"]: m for m in result["metrics"]}


def test_healthy_cpu_passes_with_launch_and_round_trip_in_microseconds():
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    assert result["status"] == "pass", result["message"]
    metrics = _metrics(result)
    for name in ("launch_latency", "sync_round_trip"):
        assert metrics[name]["unit"] == "us" and 0 < metrics[name]["value"] < 100, metrics[name]
        assert metrics[f"{name}_spread"]["unit"] == "ratio" and metrics[f"{name}_spread"]["value"] >= 0
    assert metrics["sync_round_trip"]["threshold"] == 100
    assert "empty_sync" not in metrics  # nothing is queued on the CPU device: there is no empty synchronize
    assert "µs" in result["message"] and "run synchronously" in result["message"]


def test_check_is_not_at_quick_level():
    from acceldoctor.checks.registry import get_check, select_checks

    assert get_check(CHECK).levels == ("standard", "full")
    assert CHECK not in {spec.id for spec in select_checks("quick")}


def test_an_op_that_takes_milliseconds_fails_with_the_numbers():
    params = {"launches": 5, "round_trips": 5, "repeats": 5, "warmup": 1}
    with _SlowAdd(delay=0.002):
        result = run_task(Task(CHECK, "cpu", "standard", params=params))
    assert result["status"] == "fail", result["message"]
    metrics = _metrics(result)
    assert metrics["sync_round_trip"]["value"] >= 2000 and metrics["launch_latency"]["value"] >= 2000, metrics
    message = result["message"]
    assert "fail_us=1000 µs" in message and f"{metrics['sync_round_trip']['value']:.0f} µs" in message, message


def test_thresholds_given_with_param_are_honoured(monkeypatch):
    monkeypatch.delenv("CUDA_LAUNCH_BLOCKING", raising=False)
    overrides = parse_param_overrides([f"{CHECK}.fail_us=0.001"], all_checks())[CHECK]
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL | overrides))
    assert result["status"] == "fail" and "fail_us=0.001 µs" in result["message"], result["message"]
    assert "launch-blocking debug setting" in result["message"]

    overrides = parse_param_overrides([f"{CHECK}.warn_us=0.001"], all_checks())[CHECK]
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL | overrides))
    assert result["status"] == "warn" and "warn_us=0.001 µs" in result["message"], result["message"]


def test_a_launch_blocking_variable_in_the_environment_is_named(monkeypatch):
    monkeypatch.setenv("CUDA_LAUNCH_BLOCKING", "1")
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL | {"fail_us": 0.001}))
    assert result["status"] == "fail" and "CUDA_LAUNCH_BLOCKING=1" in result["message"], result["message"]
