"""correctness.embedding: a flushing copy and a non-accumulating backward fail."""

import torch
import torch.nn.functional as F

from acceldoctor.runner.worker import Task, run_task

CHECK = "correctness.embedding"


def test_lookup_that_flushes_subnormals_is_not_an_exact_copy(monkeypatch):
    real = F.embedding

    def flushing(index, weight, *args, **kwargs):
        out = real(index, weight, *args, **kwargs)
        if weight.dtype == torch.float64:
            return out
        tiny = torch.finfo(weight.dtype).smallest_normal
        return torch.where(out.abs() < tiny, out * 0.0, out)  # -0.0 stays -0.0; subnormals become 0

    monkeypatch.setattr(F, "embedding", flushing)
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "fail"
    # The flushed subnormal is caught by the float64 comparison before the bit-exactness test.
    assert "in float32" in result["message"] and "is 0 but should be" in result["message"]


class _LastWriteWins(torch.autograd.Function):
    """A backward with index_put(accumulate=False): a row looked up many times keeps one contribution."""

    @staticmethod
    def forward(ctx, index, weight):
        ctx.save_for_backward(index)
        ctx.rows = weight.shape[0]
        return weight[index]

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        out = grad.new_zeros((ctx.rows, grad.shape[-1]))
        out.index_put_((index.reshape(-1),), grad.reshape(-1, grad.shape[-1]), accumulate=False)
        return None, out


def test_backward_that_does_not_accumulate_repeated_indices_fails(monkeypatch, metric_by_dtype):
    real = F.embedding

    def lossy(index, weight, padding_idx=None, **kwargs):
        if weight.dtype == torch.float64:
            return real(index, weight, padding_idx=padding_idx, **kwargs)
        return _LastWriteWins.apply(index, weight)

    monkeypatch.setattr(F, "embedding", lossy)
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "fail"
    assert "weight gradient in float32" in result["message"]
    assert all(count > 0 for count in metric_by_dtype(result, "failed_cases").values())
