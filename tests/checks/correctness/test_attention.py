"""correctness.attention: an off-by-one causal mask and a wrong dK fail."""

import torch
import torch.nn.functional as F

from acceldoctor.runner.worker import Task, run_task

CHECK = "correctness.attention"


def test_causal_mask_off_by_one_is_caught(monkeypatch):
    real = F.scaled_dot_product_attention

    def shifted_causal(q, k, v, attn_mask=None, is_causal=False, **kwargs):
        if is_causal and q.dtype != torch.float64:
            # each query also sees the next key: the classic off-by-one of a tiled causal mask
            keep = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril(diagonal=1)
            return real(q, k, v, attn_mask=keep, **kwargs)
        return real(q, k, v, attn_mask=attn_mask, is_causal=is_causal, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", shifted_causal)
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "fail"
    assert "attention q 1x2x17x40, k/v 1x2x33x40 causal in float32" in result["message"]


class _WrongKeyGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, k):
        return k.clone()

    @staticmethod
    def backward(ctx, grad):
        scale = torch.ones(grad.numel(), dtype=grad.dtype, device=grad.device)
        scale[0] = 1.01  # one element 1% off
        return grad * scale.reshape(grad.shape)


def test_wrong_key_gradient_is_caught(monkeypatch):
    real = F.scaled_dot_product_attention

    def wrong_grad(q, k, v, **kwargs):
        return real(q, _WrongKeyGrad.apply(k) if k.dtype != torch.float64 else k, v, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", wrong_grad)
    result = run_task(Task(CHECK, "cpu", "quick"))
    assert result["status"] == "fail"
    assert "attention q 2x3x17x64, k/v 2x3x17x64, grad of k in float32" in result["message"]
