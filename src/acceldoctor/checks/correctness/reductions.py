"""correctness.reductions: sum, mean and variance over long and strided axes against a float64 golden."""

from __future__ import annotations

import torch

from acceldoctor.checks.context import CheckContext, CheckOutcome, Verdict
from acceldoctor.checks.correctness._inputs import draw, golden, place
from acceldoctor.checks.registry import CheckDoc, Param, register_check

# (rows, length): the reduced axis is `length`; 4097 and 65537 are one past a power of two, so every
# tile, block and warp split of the reduction leaves a ragged tail.
SIZES = {
    "quick": [(16, 4097), (2, 65537)],
    "standard": [(16, 4097), (2, 65537), (8, 65537), (3, 262145), (129, 1023)],
}


@register_check(
    id="correctness.reductions",
    title="sum, mean and var give the right numbers over long and strided axes",
    levels=("quick", "standard", "full"),
    tolerances=("sum", "mean", "var"),
    params=(Param("sizes", "standard", "Which (rows, reduced length) set to sweep.", {"quick": "quick"},
          choices=tuple(SIZES)),),
    doc=CheckDoc(
        verifies="`torch.sum`, `torch.mean` and `torch.var` (unbiased and biased) reducing rows of 4097 and "
                 "65537 elements (more at standard level), along the last dimension (contiguous), along "
                 "dimension 0 (strided) and over a transposed (non-contiguous) view, with and without "
                 "`keepdim`; sums of all-positive values, the variance of values with a large offset "
                 "(1000 + N(0, 1)), a sum that overflows float16, and inf/NaN propagation, in fp32, bf16 and "
                 "fp16. Results are compared with the float64 reduction of the same rounded inputs; the sum "
                 "is allowed an error that grows with log2 of the length relative to sum(|x|).",
        why="Every loss, normalisation layer, metric and gradient-norm clip is a reduction. Reduction "
            "kernels split the axis into blocks and combine partial results; the tail block, the strided "
            "(dim 0) layout and low-precision accumulators are where stacks go wrong. Variance computed with "
            "the one-pass formula E[x^2] - E[x]^2 loses every digit when the mean is large compared with the "
            "spread, which silently breaks LayerNorm and BatchNorm statistics.",
        failure_means="The device's reduction returned a value further from the exact result than rounding "
                      "in any summation order can explain, or lost an inf/NaN: the message names the op, "
                      "dtype, shape, dimension and element. A wrong variance with a large offset points to "
                      "a numerically unstable variance kernel; wrong fp16/bf16 sums of positive values point "
                      "to an accumulator narrower than float32.",
        remedy="Re-run with `--select correctness.reductions` to confirm; compare the same op in float32 and "
               "with the input made contiguous to narrow it down; as a workaround upcast to float32 before "
               "reducing (`x.float().sum()`); update the vendor's kernel library or framework plugin "
               "(torch_npu, ROCm, IPEX) and report the op, dtype and shape with the JSON report attached.",
    ),
)
def check_reductions(ctx: CheckContext) -> CheckOutcome:
    verdict = Verdict("reductions")
    gen = ctx.generator()
    for variant in ctx.variants():
        for rows, length in SIZES[ctx.params["sizes"]]:
            x = place(draw((rows, length), gen), variant, ctx.device)
            _reduce_all(ctx, verdict, variant, x, f"{rows}x{length}", dim=-1)
            x_t = place(draw((length, rows), gen), variant, ctx.device)
            _reduce_all(ctx, verdict, variant, x_t, f"{length}x{rows}", dim=0)
        x = place(draw((8, 4097), gen), variant, ctx.device)
        _reduce_all(ctx, verdict, variant, x, "8x4097", dim=-1, keepdim=True)
        x_nc = tuple(t.transpose(0, 1) for t in place(draw((4097, 8), gen), variant, ctx.device))
        for op in ("sum", "var"):
            _reduce(ctx, verdict, variant, op, f"{op} of transposed (non-contiguous) 8x4097 dim=-1", x_nc, dim=-1)
        # All terms positive: no cancellation, so |sum| = sum(|x|) and an accumulator in the storage dtype
        # (fp16 adding 0.5 at a time stalls at 2048) cannot hide behind the sum(|x|) allowance.
        positive = place(0.5 + draw((2, 65537), gen, scale=0.05), variant, ctx.device)
        for op in ("sum", "mean"):
            _reduce(ctx, verdict, variant, op, f"{op} 2x65537 of 0.5 + N(0,0.05) (all positive)", positive, dim=-1)
        offset = place(1e3 + draw((4, 4097), gen), variant, ctx.device)
        for correction in (1, 0):
            _reduce(ctx, verdict, variant, "var", f"var 4x4097 of 1000 + N(0,1) correction={correction}",
                    offset, dim=-1, correction=correction)
        big = place(20.0 + draw((2, 4097), gen), variant, ctx.device)  # sum ~ 82000 > float16's 65504: inf
        _reduce(ctx, verdict, variant, "sum", "sum 2x4097 of 20 + N(0,1) (overflows float16)", big, dim=-1)
        special = draw((5, 257), gen)
        special[0, 100] = float("nan")
        special[1, 3] = float("inf")
        special[2, 200] = float("-inf")
        special[3, 7], special[3, 9] = float("inf"), float("-inf")  # inf - inf: nan
        special = place(special, variant, ctx.device)
        for op in ("sum", "mean", "var"):
            _reduce(ctx, verdict, variant, op, f"{op} 5x257 propagating nan/inf", special, dim=-1)
    return verdict.outcome()


def _reduce_all(ctx, verdict, variant, x, shape_label, dim, keepdim=False) -> None:
    kd = " keepdim" if keepdim else ""
    _reduce(ctx, verdict, variant, "sum", f"sum {shape_label} dim={dim}{kd}", x, dim=dim, keepdim=keepdim)
    _reduce(ctx, verdict, variant, "mean", f"mean {shape_label} dim={dim}{kd}", x, dim=dim, keepdim=keepdim)
    for correction in (1, 0):
        _reduce(ctx, verdict, variant, "var", f"var {shape_label} dim={dim} correction={correction}{kd}", x,
                dim=dim, keepdim=keepdim, correction=correction)


def _apply(op: str, x: torch.Tensor, dim: int, keepdim: bool, correction: int) -> torch.Tensor:
    if op == "sum":
        return torch.sum(x, dim=dim, keepdim=keepdim)
    if op == "mean":
        return torch.mean(x, dim=dim, keepdim=keepdim)
    return torch.var(x, dim=dim, keepdim=keepdim, correction=correction)


def _reduce(ctx, verdict, variant, op, case, placed, dim, keepdim=False, correction=1):
    """Run one reduction on the device tensor of `placed` (from `place`) and judge it against its float64 twin."""
    x_dev, x_ref = placed
    actual = _apply(op, x_dev, dim, keepdim, correction)
    ctx.synchronize()
    expected = golden(_apply, op, x_ref, dim, keepdim, correction)
    length = x_ref.shape[dim]
    # Natural error scales: a sum of n terms errs by ~eps * sum|x| (Higham), a mean by the same over n.
    # A stable (two-pass or Welford) variance sums squared deviations x - mean, each known to about
    # eps * |mean| absolute, hence var + |mean| * std: the one-pass E[x^2] - E[x]^2 errs by eps * mean^2.
    if op in ("sum", "mean"):
        magnitude = golden(_apply, op, x_ref.abs(), dim, keepdim, 0)
    else:
        magnitude = expected + golden(_apply, "mean", x_ref, dim, keepdim, 0).abs() * expected.sqrt()
    verdict.compare(case, actual, expected, variant, op=op, reduction_length=length, magnitude=magnitude)
