"""correctness.linear: F.linear (x @ W^T + b), forward and the gradients of input, weight and bias."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from acceldoctor.checks.context import CheckContext, CheckOutcome, Verdict
from acceldoctor.checks.correctness._grad import Grad, run_both, unsupported_dtype
from acceldoctor.checks.correctness._inputs import draw, golden, transposed_view
from acceldoctor.checks.registry import CheckDoc, Param, register_check

# (input shape, out_features, bias, transposed weight): batch dims, odd sizes, a long reduction.
CASES = {
    "quick": [((17, 33), 9, True, False), ((3, 5, 65), 31, True, True), ((8, 4097), 17, True, False),
              ((1, 1), 1, True, False), ((2, 7, 19), 3, False, False)],
    "standard": [((17, 33), 9, True, False), ((3, 5, 65), 31, True, True), ((8, 4097), 17, True, False),
                 ((1, 1), 1, True, False), ((2, 7, 19), 3, False, False), ((4, 64, 257), 129, True, False),
                 ((257, 511), 255, True, True), ((5, 8191), 3, True, False), ((2, 3, 128, 128), 128, True, False)],
}


def _reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    # Written out, not F.linear: the golden must not share code with what is under test.
    out = torch.matmul(x, w.transpose(0, 1))
    return out if b is None else out + b


def _device_linear(x, w, b=None):
    return F.linear(x, w, b)


@register_check(
    id="correctness.linear",
    title="Linear layers (x @ W^T + b) give the right outputs and gradients in every dtype",
    levels=("quick", "standard", "full"),
    tolerances=("linear", "linear.backward"),
    params=(Param("cases", "standard", "Which shape set to sweep.", {"quick": "quick"}, choices=tuple(CASES)),),
    doc=CheckDoc(
        verifies="`torch.nn.functional.linear` with and without bias, for 2-D inputs and inputs with extra "
                 "batch dimensions, odd feature sizes (1, 17, 33, 4097) and a weight stored transposed "
                 "(non-contiguous), in fp32, bf16, fp16 and TF32 where the device has it. The output and the "
                 "gradients of input, weight and bias (autograd with a random upstream gradient) are compared "
                 "element by element with float64 CPU results from the same rounded inputs.",
        why="Every projection in a transformer and every MLP layer is F.linear. Stacks route it to fused "
            "GEMM+bias kernels (cuBLASLt epilogues, hipBLASLt, CANN aclnn matmul with bias) that differ from "
            "the plain matmul path, and the backward uses two more GEMMs with transposed operands plus a "
            "column reduction for the bias gradient, each a separate place for a tiling or epilogue bug.",
        failure_means="The device computed a linear layer, or one of its gradients, further from the exact "
                      "value than rounding can explain; the message names which (forward, grad of input, "
                      "weight or bias), the dtype, the shape and the element. A wrong bias epilogue or "
                      "weight gradient makes training diverge while inference may still look fine.",
        remedy="Re-run with `--select correctness.linear`; compare with `correctness.matmul` (if matmul "
               "passes, suspect the fused bias epilogue or the backward GEMM with transposed operands); "
               "update the vendor math library and driver; report the dtype and shape to the vendor with "
               "the JSON report attached.",
    ),
)
def check_linear(ctx: CheckContext) -> CheckOutcome:
    verdict = Verdict("linear")
    gen = ctx.generator(11)
    for variant in ctx.variants(include_tf32=True):
        with variant.math_mode():
            for shape, n_out, bias, transposed in CASES[ctx.params["cases"]]:
                k = shape[-1]
                inputs = [Grad(draw(shape, gen)),
                          Grad(draw((n_out, k), gen, scale=k ** -0.5), transposed_view if transposed else None)]
                if bias:
                    inputs.append(Grad(draw((n_out,), gen)))
                case = (f"linear {'x'.join(map(str, shape))} -> {n_out}" + ("" if bias else " without bias")
                        + (" transposed weight" if transposed else ""))
                try:
                    run = run_both(ctx, variant, _device_linear, _reference, inputs, gen)
                except (RuntimeError, NotImplementedError) as exc:
                    if unsupported_dtype(exc, verdict, "linear", variant):
                        break
                    raise
                _judge(verdict, variant, case, run)
    return verdict.outcome()


def _judge(verdict: Verdict, variant, case: str, run) -> None:
    x, w = run.inputs[0], run.inputs[1]
    b = run.inputs[2] if len(run.inputs) > 2 else None
    ax, aw, g = x.abs(), w.abs(), run.upstream.abs()
    rows = x.numel() // x.shape[-1]
    out_mag = golden(_reference, ax, aw, None if b is None else b.abs())
    verdict.compare(case, run.out, run.ref_out, variant, op="linear", reduction_length=x.shape[-1],
                    magnitude=out_mag)
    # |grad| magnitudes: the same products taken over absolute values (no cancellation credit).
    gx_mag = golden(torch.matmul, g, aw)
    gw_mag = golden(lambda: g.reshape(-1, g.shape[-1]).T @ ax.reshape(-1, ax.shape[-1]))
    verdict.compare(f"{case}, grad of input", run.grads[0], run.ref_grads[0], variant, op="linear.backward",
                    reduction_length=w.shape[0], magnitude=gx_mag)
    verdict.compare(f"{case}, grad of weight", run.grads[1], run.ref_grads[1], variant, op="linear.backward",
                    reduction_length=rows, magnitude=gw_mag)
    if b is not None:
        gb_mag = golden(lambda: g.reshape(-1, g.shape[-1]).sum(0))
        verdict.compare(f"{case}, grad of bias", run.grads[2], run.ref_grads[2], variant, op="linear.backward",
                        reduction_length=rows, magnitude=gb_mag)
