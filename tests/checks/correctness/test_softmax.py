"""correctness.softmax: softmax-nan, a leaking mask and a half-precision sum fail."""

import torch
import torch.nn.functional as F

from acceldoctor.runner.worker import Task, run_task

CHECK = "correctness.softmax"


def test_softmax_nan_fault_is_caught_with_dtype_and_shape(metric_by_dtype):
    result = run_task(Task(CHECK, "cpu", "quick", fault="softmax-nan"))
    assert result["status"] == "fail"
    message = result["message"]
    assert "softmax 9x257 dim=-1 large logits (x100) in float32" in message and "is nan" in message
    assert all(count > 0 for count in metric_by_dtype(result, "failed_cases").values())


def test_mask_that_leaks_probability_is_caught(monkeypatch):
    real = F.softmax

    def leaky(x, dim=None, *args, **kwargs):
        if x.dtype == torch.float64:
            return real(x, dim, *args, **kwargs)
        # -inf treated as a large negative number: masked entries get a sliver of probability
        return real(x.masked_fill(torch.isneginf(x), -30.0), dim, *args, **kwargs)

    monkeypatch.setattr(F, "softmax", leaky)
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "fail"
    assert "softmax 12x31 dim=-1 -inf attention mask with a fully masked row in float32" in result["message"]


def test_row_sum_accumulated_in_half_precision_fails_on_long_rows(monkeypatch, metric_by_dtype):
    real = F.softmax

    def half_precision_sum(x, dim=None, *args, **kwargs):
        if x.dtype in (torch.float64, torch.float32) or x.shape[dim] < 1000:
            return real(x, dim, *args, **kwargs)
        xt = x.detach().float().movedim(dim, -1)
        e = torch.exp(xt - xt.amax(-1, keepdim=True))
        total = torch.zeros(xt.shape[:-1])
        for j in range(e.shape[-1]):  # a sequential row sum kept in the storage dtype: it stagnates
            total = (total + e[..., j]).to(x.dtype).float()
        return (e / total.unsqueeze(-1)).movedim(-1, dim).to(x.dtype) + 0 * x

    monkeypatch.setattr(F, "softmax", half_precision_sum)
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "fail"
    assert "softmax 17x4097 dim=-1 in bfloat16" in result["message"]
    failed = metric_by_dtype(result, "failed_cases")
    assert failed["bfloat16"] > 0 and failed["float16"] > 0 and failed["float32"] == 0
