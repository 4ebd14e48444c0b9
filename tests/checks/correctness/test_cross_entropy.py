"""correctness.cross_entropy: ignored rows in the mean and a bad grad fail."""

import torch
import torch.nn.functional as F

from acceldoctor.runner.worker import Task, run_task

CHECK = "correctness.cross_entropy"


def test_ignored_rows_counted_in_the_mean_are_caught(monkeypatch):
    real = F.cross_entropy

    def wrong_denominator(x, target, *args, reduction="mean", **kwargs):
        if reduction != "mean" or x.dtype == torch.float64:
            return real(x, target, *args, reduction=reduction, **kwargs)
        return real(x, target, *args, reduction="sum", **kwargs) / target.numel()

    monkeypatch.setattr(F, "cross_entropy", wrong_denominator)
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "fail"
    assert "cross_entropy 3x32003 reduction=mean in float32" in result["message"]


class _WrongLogitGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        grad[..., -1] *= 1.01  # the last class of every row: the tail of the vocabulary
        return grad


def test_wrong_gradient_at_the_vocabulary_tail_is_caught(monkeypatch):
    real = F.cross_entropy

    def wrong_grad(x, *args, **kwargs):
        return real(_WrongLogitGrad.apply(x) if x.dtype != torch.float64 else x, *args, **kwargs)

    monkeypatch.setattr(F, "cross_entropy", wrong_grad)
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "fail"
    assert "gradient in float32" in result["message"] and "element [" in result["message"]
