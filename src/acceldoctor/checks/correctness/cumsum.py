"""correctness.cumsum: prefix sums along every dimension, long rows and strided inputs, against float64."""

from __future__ import annotations

from functools import cache

import torch

from acceldoctor.checks.context import CheckContext, CheckOutcome, Verdict
from acceldoctor.checks.correctness._inputs import draw, golden, place, transposed_view
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.checks.tolerances import tolerance

# (rows, length) of the long-row cases; the scan runs along `length` (4097: one past a power of two,
# so every block of a parallel scan leaves a ragged tail).
SIZES = {
    "quick": [(3, 4097)],
    "standard": [(3, 4097), (33, 16385), (2, 65537)],
}


@register_check(
    id="correctness.cumsum",
    title="cumsum gives the right prefix sums along every dimension and layout",
    levels=("quick", "standard", "full"),
    tolerances=("cumsum",),
    params=(Param("sizes", "standard", "Which (rows, scan length) set to sweep.", {"quick": "quick"},
          choices=tuple(SIZES)),),
    doc=CheckDoc(
        verifies="`torch.cumsum` along each dimension of a 3-D tensor of odd sizes, along long rows (4097 "
                 "elements, more at standard level) and along dimension 0 of the same data (strided scan), on "
                 "a transposed (non-contiguous) input, on values with a positive offset (prefix sums that "
                 "grow with the position), and with inf/NaN that must poison every later element, in fp32, "
                 "bf16 and fp16. Each prefix is compared with the float64 prefix sum of the same rounded "
                 "inputs, with an error allowance that grows with the prefix length.",
        why="Prefix sums are used for position ids, ragged-batch offsets, top-p sampling, cumulative "
            "attention masks and segment reductions. A parallel scan combines block-local sums with block "
            "offsets; a wrong carry between blocks, a ragged last block or a strided layout produce prefixes "
            "that are right for the first block and wrong afterwards, which no spot check on short rows sees.",
        failure_means="The device's scan returned a prefix sum further from the exact one than rounding can "
                      "explain, or failed to propagate an inf/NaN: the message names the dtype, shape, "
                      "dimension and element (a position just after a multiple of a power of two points to a "
                      "bad carry between scan blocks).",
        remedy="Re-run with `--select correctness.cumsum` to confirm; compare float32 with the low-precision "
               "dtype and the contiguous with the transposed input to narrow it down; as a workaround "
               "compute the cumsum in float32 (`x.float().cumsum(d)`) or on a contiguous copy; update the "
               "vendor's kernel library or framework plugin and report the dtype and shape.",
    ),
)
def check_cumsum(ctx: CheckContext) -> CheckOutcome:
    verdict = Verdict("cumsum")
    gen = ctx.generator()
    for variant in ctx.variants():
        cube = place(draw((7, 17, 33), gen), variant, ctx.device)
        for dim in range(3):
            _scan(ctx, verdict, variant, f"cumsum 7x17x33 dim={dim}", cube, dim)
        _scan(ctx, verdict, variant, "cumsum 7x17x33 dim=-1", cube, -1)
        for rows, length in SIZES[ctx.params["sizes"]]:
            long_rows = draw((rows, length), gen)
            _scan(ctx, verdict, variant, f"cumsum {rows}x{length} dim=1", place(long_rows, variant, ctx.device), 1)
            _scan(ctx, verdict, variant, f"cumsum {length}x{rows} dim=0",
                  place(long_rows.T.contiguous(), variant, ctx.device), 0)
        # The same values behind transposed strides: the scan runs along a non-unit-stride dimension.
        x_dev, x_ref = place(draw((4, 4097), gen), variant, ctx.device)
        _scan(ctx, verdict, variant, "cumsum of transposed (non-contiguous) 4x4097 dim=1",
              (transposed_view(x_dev), x_ref), 1)
        # A positive offset: prefixes grow linearly, so an error relative to the running sum is visible.
        _scan(ctx, verdict, variant, "cumsum 3x4097 of 1 + N(0,0.1) dim=1",
              place(1.0 + draw((3, 4097), gen, scale=0.1), variant, ctx.device), 1)
        special = draw((4, 513), gen)
        special[0, 100] = float("nan")
        special[1, 7] = float("inf")
        special[2, 300] = float("-inf")
        special[3, 10], special[3, 500] = float("inf"), float("-inf")  # inf, then inf - inf = nan
        _scan(ctx, verdict, variant, "cumsum 4x513 propagating nan/inf dim=1", place(special, variant, ctx.device), 1)
    return verdict.outcome()


def _scan(ctx, verdict, variant, case, placed, dim) -> None:
    x_dev, x_ref = placed
    actual = torch.cumsum(x_dev, dim=dim)
    ctx.synchronize()
    expected = golden(torch.cumsum, x_ref, dim=dim)
    # Prefix i sums i+1 terms: its error scale is cumsum(|x|) times the growth for i+1 terms. The growth
    # varies per element, so it is folded into the magnitude and the comparison runs with length 1.
    magnitude = golden(torch.cumsum, x_ref.abs(), dim=dim) * _growth_along(x_ref.shape, dim)
    verdict.compare(case, actual, expected, variant, op="cumsum", reduction_length=1, magnitude=magnitude)


def _growth_along(shape: torch.Size, dim: int) -> torch.Tensor:
    """growth(i + 1) of the `cumsum` tolerance at position i of dimension `dim`, broadcastable to `shape`."""
    view = [1] * len(shape)
    view[dim] = shape[dim]
    return _growth(shape[dim]).reshape(view)


@cache
def _growth(length: int) -> torch.Tensor:
    tol = tolerance("cumsum")
    return torch.tensor([tol.growth_factor(i + 1) for i in range(length)], dtype=torch.float64)
