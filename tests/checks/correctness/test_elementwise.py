"""correctness.elementwise: wrong overflow, log(0), values and gradients fail."""

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from acceldoctor.runner.worker import Task, run_task

CHECK = "correctness.elementwise"


class _Replace(TorchFunctionMode):
    """Route calls of `func` on device dtypes to `replacement` (the float64 golden is left alone)."""

    def __init__(self, func, replacement):
        super().__init__()
        self.func, self.replacement = func, replacement

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is self.func and args[0].dtype != torch.float64:
            return self.replacement(*args, **kwargs)
        return func(*args, **kwargs)


def _run(func, replacement):
    with _Replace(func, replacement):
        return run_task(Task(CHECK, "cpu", "quick"))


def test_exp_that_saturates_instead_of_overflowing_to_inf_fails():
    def saturating_exp(x):
        info = torch.finfo(x.dtype)
        return torch.exp(x).clamp(max=info.max)

    result = _run(torch.exp, saturating_exp)
    assert result["status"] == "fail"
    message = result["message"]
    assert "exp of special values" in message and "float32" in message and "should be inf" in message


def test_log_of_zero_that_is_finite_fails():
    def guarded_log(x):
        return torch.log(x.clamp_min(torch.finfo(x.dtype).tiny) if x.is_floating_point() else x)

    result = _run(torch.log, guarded_log)
    assert result["status"] == "fail"
    assert "log of special values" in result["message"] and "should be -inf" in result["message"]


def test_gelu_one_percent_off_in_one_element_fails():
    def gelu_off(x, approximate="none"):
        out = F.gelu(x, approximate=approximate)
        if out.numel() > 100:
            scale = torch.ones(out.numel(), dtype=out.dtype, device=out.device)
            scale[100] = 1.01
            out = out * scale.reshape(out.shape)
        return out

    result = _run(F.gelu, gelu_off)
    assert result["status"] == "fail"
    assert result["message"].startswith("elementwise: gelu of 4093 values") and "element [100]" in result["message"]


class _TanhWithWrongBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y) * 1.01  # a backward kernel that disagrees with its forward


def test_tanh_backward_that_disagrees_with_its_forward_fails(metric_by_dtype):
    result = _run(torch.tanh, _TanhWithWrongBackward.apply)
    assert result["status"] == "fail"
    assert "tanh backward" in result["message"] and "float32" in result["message"]
    failed = metric_by_dtype(result, "failed_cases")
    assert failed["float32"] >= 1
