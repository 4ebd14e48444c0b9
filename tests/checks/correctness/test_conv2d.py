"""correctness.conv2d: a wrong border element or gradient fails.

The catalogued fault `crash-conv2d` kills the process: it is exercised through the process runner
(tests/faults), never in-process here.
"""

import torch
import torch.nn.functional as F

from acceldoctor.runner.worker import Task, run_task

CHECK = "correctness.conv2d"


def test_wrong_last_output_element_is_caught(monkeypatch):
    real = F.conv2d

    def border_bug(x, w, b=None, *args, **kwargs):
        out = real(x, w, b, *args, **kwargs)
        if x.dtype == torch.float64:
            return out
        scale = torch.ones_like(out)
        scale[..., -1, -1] = 1.01  # the bottom-right corner, where tiles end, is 1% off
        return out * scale

    monkeypatch.setattr(F, "conv2d", border_bug)
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "fail"
    assert "conv2d 2x3x17x17 -> 5 channels" in result["message"] and "in float32" in result["message"]


class _WrongFilterGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w):
        return w.clone()

    @staticmethod
    def backward(ctx, grad):
        scale = torch.ones(grad.numel(), dtype=grad.dtype, device=grad.device)
        scale[-1] = 1.01  # one element 1% off
        return grad * scale.reshape(grad.shape)


def test_wrong_filter_gradient_is_caught(monkeypatch):
    real = F.conv2d

    def wrong_grad(x, w, *args, **kwargs):
        return real(x, _WrongFilterGrad.apply(w) if x.dtype != torch.float64 else w, *args, **kwargs)

    monkeypatch.setattr(F, "conv2d", wrong_grad)
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "fail"
    assert "grad of weight in float32" in result["message"]
