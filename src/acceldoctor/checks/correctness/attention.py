"""correctness.attention: F.scaled_dot_product_attention forward and q/k/v gradients vs float64 math."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from acceldoctor.checks.context import CheckContext, CheckOutcome, Verdict
from acceldoctor.checks.correctness._grad import Grad, run_both, unsupported_dtype
from acceldoctor.checks.correctness._inputs import draw
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.faults import suspended

# (batch, q heads, kv heads, q length, kv length, head dim, mask): mask is none, causal, bool or additive.
CASES = {
    "quick": [(2, 3, 3, 17, 17, 64, "none"), (1, 2, 2, 17, 33, 40, "causal"), (2, 2, 2, 1, 129, 64, "bool"),
              (1, 2, 2, 129, 17, 80, "additive"), (1, 4, 2, 17, 17, 64, "gqa causal")],
    "standard": [(2, 3, 3, 17, 17, 64, "none"), (1, 2, 2, 17, 33, 40, "causal"), (2, 2, 2, 1, 129, 64, "bool"),
                 (1, 2, 2, 129, 17, 80, "additive"), (1, 4, 2, 17, 17, 64, "gqa causal"),
                 (2, 4, 4, 129, 129, 64, "causal"), (1, 8, 8, 257, 513, 128, "bool"), (1, 4, 4, 1, 1, 40, "none"),
                 (1, 8, 2, 129, 129, 80, "gqa causal"), (2, 2, 2, 511, 511, 64, "none")],
}


def _mask(kind: str, lq: int, lk: int, gen: torch.Generator) -> torch.Tensor | None:
    if kind in ("bool", "additive"):
        keep = torch.rand((lq, lk), generator=gen) > 0.4
        keep[:, 0] = True  # never a fully masked row: backends legitimately differ on those
        if kind == "bool":
            return keep
        return torch.where(keep, draw((lq, lk), gen), torch.full((lq, lk), float("-inf"), dtype=torch.float64))
    return None


def _scores(q, k, mask, causal):
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:  # top-left aligned, as PyTorch defines is_causal for unequal lengths
        keep = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    return scores


def _expand_kv(q, t):
    return t.repeat_interleave(q.shape[1] // t.shape[1], dim=1)


def _reference(q, k, v, mask, causal, gqa):
    """Attention written out in float64: softmax(q k^T / sqrt(d) + mask) v."""
    if gqa:
        k, v = _expand_kv(q, k), _expand_kv(q, v)
    return torch.softmax(_scores(q, k, mask, causal), dim=-1) @ v


def _device_attention(q, k, v, mask, causal, gqa):
    if mask is not None and mask.is_floating_point():
        mask = mask.to(q.dtype)
    kwargs = {"enable_gqa": True} if gqa else {}
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, **kwargs)


@register_check(
    id="correctness.attention",
    title="Scaled dot-product attention gives the right outputs and q/k/v gradients",
    levels=("quick", "standard", "full"),
    tolerances=("attention", "attention.backward"),
    params=(Param("cases", "standard", "Which shape set to sweep.", {"quick": "quick"}, choices=tuple(CASES)),),
    doc=CheckDoc(
        verifies="`F.scaled_dot_product_attention` without a mask, causal (also with more keys than "
                 "queries), with a boolean and an additive mask, sequence lengths 1, 17, 129 and longer, "
                 "head dims 40, 64, 80 and 128, and grouped-query attention (`enable_gqa`, torch >= 2.5), in "
                 "fp32, bf16 and fp16. Output and the gradients of q, k and v are compared with attention "
                 "written out as softmax(q k^T / sqrt(d) + mask) v in float64 on the CPU.",
        why="Attention dispatches to fused kernels (FlashAttention, memory-efficient attention, vendor "
            "fused-attention operators on Ascend, ROCm and XPU) chosen by head dim, length, mask and dtype. "
            "Each is hand-written with its own tiling, online softmax and masking logic; odd lengths, head "
            "dims that are not powers of two and masks are where they return wrong values or wrong gradients.",
        failure_means="The fused attention kernel chosen for the named configuration and dtype computed a "
                      "wrong output or gradient. Training with it degrades or diverges; inference quality drops.",
        remedy="Re-run with `--select correctness.attention`; force another backend (on CUDA "
               "`torch.nn.attention.sdpa_kernel`, elsewhere the vendor's switch for fused attention) to find "
               "which kernel is wrong and use a working one meanwhile; report the configuration, dtype and "
               "versions to the vendor with the JSON report attached.",
    ),
)
def check_attention(ctx: CheckContext) -> CheckOutcome:
    verdict = Verdict("attention")
    gen = ctx.generator(53)
    for variant in ctx.variants():
        with variant.math_mode():
            for b, hq, hkv, lq, lk, d, kind in CASES[ctx.params["cases"]]:
                gqa, causal = kind.startswith("gqa"), kind.endswith("causal")
                mask = _mask(kind, lq, lk, gen)
                if mask is not None and mask.is_floating_point():
                    mask = mask.to(variant.dtype).to(torch.float64)  # the device sees the rounded mask
                inputs = [Grad(draw((b, hq, lq, d), gen)), Grad(draw((b, hkv, lk, d), gen)),
                          Grad(draw((b, hkv, lk, d), gen)), mask, causal, gqa]
                case = (f"attention q {b}x{hq}x{lq}x{d}, k/v {b}x{hkv}x{lk}x{d}"
                        + {"none": "", "causal": " causal", "bool": " boolean mask", "additive": " additive mask",
                           "gqa causal": " grouped-query causal"}[kind])
                try:
                    run = run_both(ctx, variant, _device_attention, _reference, inputs, gen)
                except TypeError as exc:
                    if gqa and "enable_gqa" in str(exc):
                        verdict.skip_case(f"grouped-query attention needs torch >= 2.5 ({torch.__version__})")
                        continue
                    raise
                except (RuntimeError, NotImplementedError) as exc:
                    if unsupported_dtype(exc, verdict, "scaled_dot_product_attention", variant):
                        break
                    raise
                _judge(verdict, variant, case, run, d, lk, gqa)
    return verdict.outcome()


def _judge(verdict: Verdict, variant, case: str, run, d: int, lk: int, gqa: bool) -> None:
    q, k, v, mask, causal, _ = run.inputs
    with suspended():
        if gqa:
            k, v = _expand_kv(q, k), _expand_kv(q, v)
        scale = 1 / math.sqrt(d)
        # exp() turns an absolute error of a score into a relative error of its probability, and math
        # backends round the scores to the input dtype first: p * (1 + |s|) is each probability's error scale.
        scores = _scores(q, k, mask, causal)
        p = torch.softmax(scores, -1)
        sens = p * (1 + torch.where(torch.isfinite(scores), scores.abs(), torch.zeros_like(scores)))
        out = p @ v
        out_mag = sens @ v.abs() + out.abs() * sens.sum(-1, keepdim=True)
        # Backward: dv = p^T do; dp = do v^T; ds = p (dp - rowsum(do * o)); dq = ds k s; dk = ds^T q s.
        do = run.upstream.abs()
        dv_mag = sens.transpose(-1, -2) @ do
        ds_mag = sens * (do @ v.abs().transpose(-1, -2) + (do * out_mag).sum(-1, keepdim=True))
        dq_mag = ds_mag @ k.abs() * scale
        dk_mag = ds_mag.transpose(-1, -2) @ q.abs() * scale
        if gqa:  # gradients of shared k/v heads sum over their query heads
            group = q.shape[1] // run.inputs[1].shape[1]
            dk_mag, dv_mag = (t.unflatten(1, (-1, group)).sum(2) for t in (dk_mag, dv_mag))
    verdict.compare(case, run.out, run.ref_out, variant, op="attention", reduction_length=max(lk, d),
                    magnitude=out_mag)
    lq = q.shape[-2]
    for name, got, want, mag, length in (("q", run.grads[0], run.ref_grads[0], dq_mag, lk),
                                         ("k", run.grads[1], run.ref_grads[1], dk_mag, lq),
                                         ("v", run.grads[2], run.ref_grads[2], dv_mag, lq)):
        verdict.compare(f"{case}, grad of {name}", got, want, variant, op="attention.backward",
                        reduction_length=max(length, d), magnitude=mag)
