"""performance.train_step: tokens/s and model TFLOP/s per dtype on a healthy CPU; MFU against a spec sheet; NaN loss."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from acceldoctor.checks.performance import train_step
from acceldoctor.checks.performance._transformer import TransformerShape, build_model, language_model_loss
from acceldoctor.runner.worker import Task, run_task

CHECK = "performance.train_step"
TINY = {"d_model": 32, "layers": 1, "heads": 2, "seq_len": 16, "batch": 2, "vocab": 64}
SMALL = TINY | {"warmup": 1, "repeats": 5, "max_dtype_s": 60.0}
DTYPES = {"float32", "bfloat16", "float16"}


class _NanAttention(TorchFunctionMode):
    """Attention returns NaN: a device whose attention kernel is broken."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is F.scaled_dot_product_attention:
            return out * float("nan")
        return out


def test_healthy_cpu_reports_tokens_per_second_and_tflops_per_dtype(metric_by_dtype):
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    assert result["status"] == "pass", result["message"]
    tokens_per_s = metric_by_dtype(result, "tokens_per_s")
    tflops = metric_by_dtype(result, "tflops")
    step_ms = metric_by_dtype(result, "step_time")
    assert set(tokens_per_s) == set(tflops) == set(step_ms) == DTYPES, result["metrics"]
    assert all(v > 0 for v in [*tokens_per_s.values(), *tflops.values()])
    units = {m["name"]: m["unit"] for m in result["metrics"]}
    assert units["tokens_per_s"] == "tokens/s" and units["tflops"] == "TFLOP/s" and units["step_time"] == "ms"
    shape = TransformerShape(**TINY)
    for dtype in DTYPES:  # both rates are the same step time seen through tokens and model FLOPs per step
        assert tokens_per_s[dtype] == pytest.approx(shape.tokens / (step_ms[dtype] / 1e3), rel=1e-6)
        assert tflops[dtype] == pytest.approx(shape.flops_per_step / (step_ms[dtype] / 1e3) / 1e12, rel=1e-6)
    losses = metric_by_dtype(result, "loss")
    assert all(abs(v - math.log(64)) < 1.0 for v in losses.values()), losses  # random targets: about ln(vocab)
    assert all(v >= 0 for v in metric_by_dtype(result, "step_spread").values())
    assert "tokens/s" in result["message"] and "float32" in result["message"]
    assert "efficiency" not in {m["name"] for m in result["metrics"]}


def test_check_is_not_at_quick_level():
    from acceldoctor.checks.registry import get_check

    assert get_check(CHECK).levels == ("standard", "full")


def test_throughput_far_below_the_spec_sheet_fails_with_efficiency(monkeypatch, metric_by_dtype, spec_sheet):
    peaks = {"float32": 1e6, "bfloat16": 1e6}
    monkeypatch.setattr(train_step, "spec_for", lambda device: spec_sheet(peak_tflops=peaks))
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    assert result["status"] == "fail", result["message"]
    assert "efficiency" in result["message"] and "float32" in result["message"]
    efficiency = metric_by_dtype(result, "efficiency")
    assert set(efficiency) == {"float32", "bfloat16"}, efficiency  # the sheet lists no float16 peak
    assert all(0 < v < 0.03 for v in efficiency.values()), efficiency


def test_throughput_above_a_tiny_spec_sheet_peak_passes(monkeypatch, metric_by_dtype, spec_sheet):
    peaks = {"float32": 1e-9, "bfloat16": 1e-9}
    monkeypatch.setattr(train_step, "spec_for", lambda device: spec_sheet(peak_tflops=peaks))
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    assert result["status"] == "pass", result["message"]
    assert all(v > 1 for v in metric_by_dtype(result, "efficiency").values())
    assert "within the spec sheet's expectations" in result["message"]


def test_a_nan_loss_fails_and_names_the_dtype(metric_by_dtype):
    with _NanAttention():
        result = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    assert result["status"] == "fail", result["message"]
    assert "not finite" in result["message"] and "float32" in result["message"], result["message"]
    assert metric_by_dtype(result, "loss")["float32"] is None


def test_dtypes_predicted_too_slow_are_skipped_and_named(monkeypatch, metric_by_dtype):
    monkeypatch.setattr(train_step._Slowdown, "__call__", lambda self, dtype: 1000.0)
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL | {"max_dtype_s": 1.0}))
    assert result["status"] == "pass", result["message"]
    assert set(metric_by_dtype(result, "tokens_per_s")) == {"float32"}
    assert "skipped as too slow to measure within max_dtype_s=1 s: bfloat16" in result["message"], result["message"]


def test_model_flops_formula_matches_a_count_of_every_matrix_product():
    shape = TransformerShape(d_model=64, layers=2, heads=4, seq_len=32, batch=3, vocab=100)
    model = build_model(shape, seed=0)
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(shape.vocab, (shape.batch, shape.seq_len), generator=gen)
    targets = torch.randint(shape.vocab, (shape.batch, shape.seq_len), generator=gen)
    # The math backend computes attention with counted matrix products (the fused CPU kernel is not counted).
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        language_model_loss(model, tokens, targets).backward()
    assert shape.flops_per_step == pytest.approx(counter.get_total_flops(), rel=0.02)


def test_heads_must_divide_the_width():
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL | {"heads": 5}))
    assert result["status"] == "error" and "heads=5 does not divide d_model=32" in result["message"]
