"""correctness.matmul: matrix products (mm, batched, broadcast, strided) against a float64 golden."""

from __future__ import annotations

import torch

from acceldoctor.checks.context import CheckContext, CheckOutcome, Verdict
from acceldoctor.checks.correctness._inputs import draw, golden, place, transposed_view
from acceldoctor.checks.registry import CheckDoc, Param, register_check

# (M, K, N): odd sizes that are not multiples of any tile, a degenerate K=1, and a long reduction.
SHAPES = {
    "quick": [(17, 33, 9), (64, 4097, 17), (1, 1, 1)],
    "standard": [(17, 33, 9), (64, 4097, 17), (1, 1, 1), (128, 128, 128), (257, 511, 129), (5, 8191, 3)],
}


@register_check(
    id="correctness.matmul",
    title="Matrix multiply and batched matmul give the right numbers in every dtype",
    levels=("quick", "standard", "full"),
    tolerances=("matmul",),
    params=(Param("shapes", "standard", "Which (M, K, N) shape set to sweep.", {"quick": "quick"},
          choices=tuple(SHAPES)),),
    doc=CheckDoc(
        verifies="`A @ B` for 2-D, batched and broadcast batched operands, contiguous and transposed "
                 "(non-contiguous) layouts, odd sizes that are not multiples of tile sizes (1, 17, 4097), "
                 "tiny values, and NaN/inf propagation, in fp32, bf16, fp16 and TF32 where the device has "
                 "it. Each result is compared element by element with the float64 product of the same "
                 "(rounded) inputs computed on the CPU.",
        why="Every linear layer, attention projection and MLP is a GEMM. GEMM kernels are hand-tuned per "
            "shape, dtype and layout, and vendor libraries ship wrong results for edge shapes (tails of "
            "tiles, transposed operands) more often than for the happy path.",
        failure_means="The device's GEMM returned numbers further from the exact product than rounding can "
                      "explain: the message names the dtype, shape, layout and element. Training diverges or "
                      "inference quality drops silently on such a stack.",
        remedy="Re-run with `--select correctness.matmul` to confirm; try the same shape with the other "
               "layout or dtype to narrow it down; update the vendor math library (cuBLAS/hipBLASLt/CANN "
               "aclnn) or driver; report the shape and dtype to the vendor with the JSON report attached.",
    ),
)
def check_matmul(ctx: CheckContext) -> CheckOutcome:
    verdict = Verdict("matmul")
    gen = ctx.generator()
    for variant in ctx.variants(include_tf32=True):
        with variant.math_mode():
            for m, k, n in SHAPES[ctx.params["shapes"]]:
                a64, b64 = draw((m, k), gen), draw((k, n), gen)
                _compare_product(ctx, verdict, variant, f"matmul {m}x{k} @ {k}x{n}", a64, b64)
                _compare_product(ctx, verdict, variant, f"matmul {m}x{k} @ {k}x{n} transposed A",
                                 a64, b64, layout=transposed_view)
            batched_a, batched_b = draw((3, 17, 65), gen), draw((65, 33), gen)
            _compare_product(ctx, verdict, variant, "batched matmul 3x17x65 @ broadcast 65x33",
                             batched_a, batched_b)
            bmm_a, bmm_b = draw((4, 9, 129), gen), draw((4, 129, 7), gen)
            _compare_product(ctx, verdict, variant, "bmm 4x9x129 @ 4x129x7", bmm_a, bmm_b, op=torch.bmm)
            tiny_a, tiny_b = draw((16, 31), gen, scale=1e-3), draw((31, 8), gen, scale=1e-3)
            _compare_product(ctx, verdict, variant, "matmul of tiny values 16x31 @ 31x8", tiny_a, tiny_b)
            special = draw((8, 19), gen)
            special[2, 5], special[6, 0] = float("nan"), float("inf")
            _compare_product(ctx, verdict, variant, "matmul propagating nan/inf 8x19 @ 19x5",
                             special, draw((19, 5), gen))
    return verdict.outcome()


def _compare_product(ctx, verdict, variant, case, a64, b64, layout=None, op=torch.matmul) -> None:
    a_dev, a_ref = place(a64, variant, ctx.device)
    b_dev, b_ref = place(b64, variant, ctx.device)
    if layout is not None:
        a_dev = layout(a_dev)
    actual = op(a_dev, b_dev)
    ctx.synchronize()
    expected = golden(op, a_ref, b_ref)
    magnitude = golden(op, a_ref.abs(), b_ref.abs())
    verdict.compare(case, actual, expected, variant, op="matmul", reduction_length=a64.shape[-1],
                    magnitude=magnitude)
