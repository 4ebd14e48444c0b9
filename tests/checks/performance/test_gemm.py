"""performance.gemm: reports best TFLOP/s per dtype on a healthy CPU; judged against a (fake) spec sheet; slows down."""

import time

from torch.overrides import TorchFunctionMode

from acceldoctor.checks.performance import gemm
from acceldoctor.faults.catalog import MATMUL_FAMILY
from acceldoctor.runner.worker import Task, run_task

CHECK = "performance.gemm"
SMALL = {"sizes": [64, 128], "repeats": 5, "warmup": 1, "min_repeat_s": 0.01}


class _SlowMatmul(TorchFunctionMode):
    """Every matrix product sleeps `delay` seconds first: a device that computes GEMMs far too slowly."""

    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in MATMUL_FAMILY:
            time.sleep(self.delay)
        return func(*args, **(kwargs or {}))


def test_healthy_cpu_reports_positive_tflops_per_dtype(metric_by_dtype):
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    assert result["status"] == "pass", result["message"]
    tflops = metric_by_dtype(result, "tflops")
    assert set(tflops) == {"float32", "bfloat16", "float16"}, tflops
    assert all(v > 0 for v in tflops.values()), tflops
    assert set(metric_by_dtype(result, "peak_size").values()) <= {64, 128}
    assert all(v >= 0 for v in metric_by_dtype(result, "tflops_spread").values())
    assert "TFLOP/s in float32" in result["message"] and "efficiency" not in {m["name"] for m in result["metrics"]}


def test_check_is_not_at_quick_level():
    from acceldoctor.checks.registry import get_check

    assert get_check(CHECK).levels == ("standard", "full")
    assert gemm.device_name("cpu") is None


def test_throughput_far_below_the_spec_sheet_fails_with_efficiency(monkeypatch, metric_by_dtype, spec_sheet):
    peaks = {"float32": 1e6, "bfloat16": 1e6, "float16": 1e6}
    monkeypatch.setattr(gemm, "spec_for", lambda device: spec_sheet(peak_tflops=peaks, memory_bandwidth_gbs=1e9))
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    assert result["status"] == "fail", result["message"]
    assert "efficiency" in result["message"] and "float32" in result["message"]
    efficiency = metric_by_dtype(result, "efficiency")
    assert set(efficiency) == set(peaks) and all(0 < v < 0.25 for v in efficiency.values()), efficiency


def test_throughput_near_the_spec_sheet_passes_and_a_middling_one_warns(monkeypatch, spec_sheet):
    healthy = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    measured = {m["dtype"]: m["value"] for m in healthy["metrics"] if m["name"] == "tflops"}
    low = {k: v / 10 for k, v in measured.items()}  # the device beats a tenfold-lower spec: efficiency ~10
    monkeypatch.setattr(gemm, "spec_for", lambda device: spec_sheet(peak_tflops=low))
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    assert result["status"] == "pass", result["message"]
    middling = {k: v * 2.5 for k, v in measured.items()}  # efficiency ~0.4: between fail (0.25) and warn (0.5)
    monkeypatch.setattr(gemm, "spec_for", lambda device: spec_sheet(peak_tflops=middling))
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL | {"fail_efficiency": 0.05}))
    assert result["status"] == "warn", result["message"]


def test_a_slowed_matmul_lowers_the_reported_tflops(metric_by_dtype):
    n = 128
    params = {"sizes": [n], "repeats": 5, "warmup": 1, "min_repeat_s": 0.0}
    healthy = metric_by_dtype(run_task(Task(CHECK, "cpu", "standard", params=params)), "tflops")["float32"]
    per_call_s = 2 * n**3 / (healthy * 1e12)
    with _SlowMatmul(delay=max(0.002, 4 * per_call_s)):  # each product now takes at least five times as long
        slowed = metric_by_dtype(run_task(Task(CHECK, "cpu", "standard", params=params)), "tflops")["float32"]
    assert 0 < slowed < 0.5 * healthy, (slowed, healthy)
