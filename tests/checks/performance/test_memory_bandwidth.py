"""performance.memory_bandwidth: STREAM figures on a healthy CPU; judged against a (fake) spec sheet."""

from acceldoctor.checks.performance import memory_bandwidth
from acceldoctor.runner.worker import Task, run_task

CHECK = "performance.memory_bandwidth"
SMALL = {"elements_mi": 4, "repeats": 5, "warmup": 1}
KERNELS = ("copy", "scale", "add", "triad")


def _metrics(result):
    return {m["name"]: m for m in result["metrics"]}


def test_healthy_cpu_reports_every_stream_kernel_in_gb_per_s():
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    assert result["status"] == "pass", result["message"]
    metrics = _metrics(result)
    for kernel in KERNELS:
        assert metrics[f"{kernel}_bandwidth"]["unit"] == "GB/s"
        assert metrics[f"{kernel}_bandwidth"]["value"] > 0
        assert metrics[f"{kernel}_spread"]["value"] >= 0
        assert kernel in result["message"]
    assert "efficiency" not in metrics and "no spec sheet" in result["message"]


def test_bandwidth_far_below_the_spec_sheet_fails_with_efficiency(monkeypatch, spec_sheet):
    monkeypatch.setattr(memory_bandwidth, "spec_for",
                        lambda device: spec_sheet(memory_bandwidth_gbs=1e9))
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    assert result["status"] == "fail", result["message"]
    assert "efficiency" in result["message"] and "GB/s" in result["message"]
    efficiency = _metrics(result)["efficiency"]
    assert 0 < efficiency["value"] < 0.25 and efficiency["threshold"] == 0.5


def test_bandwidth_close_to_the_spec_sheet_passes(monkeypatch, spec_sheet):
    monkeypatch.setattr(memory_bandwidth, "spec_for", lambda device: spec_sheet(memory_bandwidth_gbs=1e-3))
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    assert result["status"] == "pass", result["message"]
    assert _metrics(result)["efficiency"]["value"] > 1
