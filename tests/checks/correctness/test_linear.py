"""correctness.linear: a wrong bias epilogue or bias gradient fails."""

import torch
import torch.nn.functional as F

from acceldoctor.runner.worker import Task, run_task

CHECK = "correctness.linear"


def test_epilogue_that_drops_the_last_bias_is_caught(monkeypatch):
    real = F.linear

    def dropped_tail_bias(x, w, b=None):
        out = real(x, w, b)
        if b is None or x.dtype == torch.float64:
            return out
        return torch.cat([out[..., :-1], out[..., -1:] - b[-1]], dim=-1)

    monkeypatch.setattr(F, "linear", dropped_tail_bias)
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "fail"
    assert "linear 17x33 -> 9 in float32" in result["message"] and "element [" in result["message"]


class _WrongBiasGrad(torch.autograd.Function):
    """Identity forward; the backward hands back a bias gradient 1% too large."""

    @staticmethod
    def forward(ctx, b):
        return b.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * 1.01


def test_wrong_bias_gradient_is_caught(monkeypatch, metric_by_dtype):
    real = F.linear

    def wrong_grad(x, w, b=None):
        if b is not None and x.dtype != torch.float64:
            b = _WrongBiasGrad.apply(b)
        return real(x, w, b)

    monkeypatch.setattr(F, "linear", wrong_grad)
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "fail"
    assert "grad of bias in float32" in result["message"]
    assert metric_by_dtype(result, "failed_cases")["float32"] > 0
