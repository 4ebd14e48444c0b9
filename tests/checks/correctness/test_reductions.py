"""correctness.reductions: wrong sums, unstable variances and lost infinities fail."""

import pytest
import torch
from torch.overrides import TorchFunctionMode

from acceldoctor.runner.worker import Task, run_task

CHECK = "correctness.reductions"


class _Wrong(TorchFunctionMode):
    """Replace what `func` returns for device dtypes (the float64 golden is left alone)."""

    def __init__(self, func, corrupt):
        super().__init__()
        self.func, self.corrupt = func, corrupt

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is self.func and args[0].dtype != torch.float64:
            return self.corrupt(*args, **kwargs)
        return func(*args, **kwargs)


def _run(mode):
    with mode:
        return run_task(Task(CHECK, "cpu", "quick"))


def test_sum_one_percent_off_in_one_element_fails_and_names_it():
    def sum_off(x, *args, **kwargs):
        out = torch.sum(x, *args, **kwargs)
        if out.dim() and out.numel() > 1:
            out = out.clone()
            out.view(-1)[1] *= 1.01
        return out

    result = _run(_Wrong(torch.sum, sum_off))
    assert result["status"] == "fail"
    assert result["message"].startswith("reductions: sum ") and "float32" in result["message"]
    assert "element [1]" in result["message"]


def test_one_pass_variance_with_large_offset_fails():
    def naive_var(x, dim=None, *, correction=1, keepdim=False):
        xf = x.float()
        n = xf.shape[dim]
        mean_sq = torch.mean(xf * xf, dim=dim, keepdim=keepdim)
        mean = torch.mean(xf, dim=dim, keepdim=keepdim)
        return ((mean_sq - mean * mean) * n / (n - correction)).to(x.dtype)

    result = _run(_Wrong(torch.var, naive_var))
    assert result["status"] == "fail"
    assert "1000 + N(0,1)" in result["message"], result["message"]


def test_sum_that_turns_inf_into_nan_fails():
    def compensated_sum(x, *args, **kwargs):  # Kahan-style compensation computes inf - inf = nan
        out = torch.sum(x, *args, **kwargs)
        return torch.where(torch.isinf(out), torch.full_like(out, float("nan")), out)

    result = _run(_Wrong(torch.sum, compensated_sum))
    assert result["status"] == "fail"
    assert "nan/inf" in result["message"] and "should be inf" in result["message"]



def test_sum_accumulating_in_float16_fails_on_positive_values(metric_by_dtype):
    np = pytest.importorskip("numpy")

    def fp16_accumulator(x, dim=None, keepdim=False):
        if x.dtype != torch.float16 or dim is None:
            return torch.sum(x, dim=dim, keepdim=keepdim)
        # numpy's cumsum adds strictly left to right, rounding to float16 after every addition.
        with np.errstate(all="ignore"):  # the inf/nan cases
            running = np.cumsum(x.numpy(), axis=dim, dtype=np.float16)
        out = torch.from_numpy(np.take(running, [-1], axis=dim))
        return out if keepdim else out.squeeze(dim)

    result = _run(_Wrong(torch.sum, fp16_accumulator))
    assert result["status"] == "fail"
    assert "all positive" in result["message"] and "float16" in result["message"], result["message"]
    failed = metric_by_dtype(result, "failed_cases")
    assert failed["float32"] == 0 and failed["bfloat16"] == 0
