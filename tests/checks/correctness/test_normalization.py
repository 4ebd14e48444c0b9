"""correctness.normalization: a one-pass variance and a wrong gradient fail."""

import torch
import torch.nn.functional as F

from acceldoctor.runner.worker import Task, run_task

CHECK = "correctness.normalization"


def test_one_pass_variance_fails_on_large_mean(monkeypatch):
    real = F.layer_norm

    def one_pass(x, shape, weight=None, bias=None, eps=1e-5):
        if x.dtype == torch.float64:
            return real(x, shape, weight, bias, eps)
        dims = tuple(range(-len(shape), 0))
        xf = x.float()  # even in float32, E[x^2] - E[x]^2 cancels catastrophically for 1e4 + N(0, 1)
        mean = xf.mean(dims, keepdim=True)
        var = ((xf * xf).mean(dims, keepdim=True) - mean * mean).clamp_min(0)
        y = (xf - mean) / torch.sqrt(var + eps)
        if weight is not None:
            y = y * weight.float() + bias.float()
        return y.to(x.dtype)

    monkeypatch.setattr(F, "layer_norm", one_pass)
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "fail"
    assert "layer_norm 9x257 over 257, values 10000 + N(0,1) in float32" in result["message"]


class _WrongInputGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        scale = torch.ones(grad.numel(), dtype=grad.dtype, device=grad.device)
        scale[-1] = 1.01  # one element 1% off
        return grad * scale.reshape(grad.shape)


def test_wrong_rms_norm_input_gradient_is_caught(monkeypatch):
    real = F.rms_norm

    def wrong_grad(x, *args, **kwargs):
        return real(_WrongInputGrad.apply(x) if x.dtype != torch.float64 else x, *args, **kwargs)

    monkeypatch.setattr(F, "rms_norm", wrong_grad)
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "fail"
    assert "rms_norm 17x4097 over 4097, grad of input in float32" in result["message"]
