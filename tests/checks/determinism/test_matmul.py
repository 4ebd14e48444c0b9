"""determinism.matmul: identical products stay bit-identical on a healthy CPU; one flipped bit fails."""

from torch.overrides import TorchFunctionMode

from acceldoctor.faults.catalog import FAULTS, MATMUL_FAMILY
from acceldoctor.runner.worker import Task, run_task

CHECK = "determinism.matmul"


class _CountMatmuls(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += func in MATMUL_FAMILY
        return func(*args, **(kwargs or {}))


def test_healthy_cpu_repeats_every_product_bit_for_bit():
    counter = _CountMatmuls()
    with counter:
        result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "pass", result["message"]
    metrics = {m["name"]: m["value"] for m in result["metrics"]}
    assert metrics["mismatching_runs"] == 0 and metrics["repetitions"] >= 60
    # The bitflip fault corrupts one in every FAULTS["bitflip"].every GEMM calls: the check must make enough of them.
    assert counter.calls >= max(60, 2 * FAULTS["bitflip"].every)


def test_one_flipped_bit_fails_and_names_dtype_shape_repetition_and_values():
    result = run_task(Task(CHECK, "cpu", "quick", fault="bitflip"))
    assert result["status"] == "fail", result["message"]
    message = result["message"]
    assert message.startswith("matmul ") and " @ " in message
    assert "repetition " in message and "differs from the first result in 1 of " in message
    assert " instead of " in message and message.endswith(".")
    assert any(dtype in message for dtype in ("float32", "bfloat16", "float16"))
    metrics = {m["name"]: m["value"] for m in result["metrics"]}
    assert metrics["mismatching_runs"] >= 1
