"""determinism.matmul: the same matrix product, repeated, must give the same bits every time."""

from __future__ import annotations

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.correctness._inputs import draw, place
from acceldoctor.checks.determinism._bits import describe_difference
from acceldoctor.checks.numerics import bitwise_equal
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.report.model import Metric, Status

# (batch, M, K, N); batch 0 means a plain 2-D product. Odd sizes, a long K (split-K kernels) and a batch.
SHAPES = {
    "quick": [(0, 17, 33, 9), (0, 5, 1031, 3), (4, 9, 65, 7), (0, 33, 257, 65)],
    "standard": [(0, 17, 33, 9), (0, 5, 1031, 3), (4, 9, 65, 7), (0, 33, 257, 65), (0, 16, 4097, 9),
                 (0, 129, 257, 65)],
}


@register_check(
    id="determinism.matmul",
    title="Repeating the same matmul gives bit-identical results",
    levels=("quick", "standard", "full"),
    params=(
        Param("repetitions", 200, "How many times each product is computed.", {"quick": 60}),
        Param("shapes", "standard", "Which (batch, M, K, N) shape set to repeat.", {"quick": "quick"},
          choices=tuple(SHAPES)),
    ),
    doc=CheckDoc(
        verifies="The same `A @ B` (same inputs, same device, same process) is computed many times over — 60 "
                 "rounds at quick level, 200 at standard — for several shapes (odd sizes, a long reduction "
                 "dimension that invites split-K kernels, a batched product) in fp32, bf16, fp16 and TF32 "
                 "where the device has it, interleaving the shapes so that each repetition runs after "
                 "different work. Every result must be bit for bit equal to the first one.",
        why="GEMM libraries promise run-to-run reproducibility for a fixed problem on a fixed device. When "
            "the same product gives different bits, either the kernel picks a non-deterministic algorithm "
            "(atomics-based split-K reductions) or, worse, the hardware silently corrupts data: a marginal "
            "chip, an overheating or undervolted part, or failing memory flips bits now and then. Such "
            "silent data corruption has been reported by every large fleet operator and makes training "
            "runs diverge without any error message.",
        failure_means="At least one repetition of an identical product produced different bits: the message "
                      "names the dtype, shape, repetition and the first differing element with both values. "
                      "A single flipped element among otherwise identical runs points to silent data "
                      "corruption in the chip; small last-bit differences in many elements point to a "
                      "non-deterministic GEMM algorithm.",
        remedy="Re-run the check several times and under `acceldoctor stress`: if a few isolated elements "
               "differ, take the device out of service and ask the vendor for a hardware diagnostic (field "
               "diagnostics, DCGM level 3, npu-smi/hccn tools). If many elements differ by a last bit, "
               "set the library's deterministic mode (e.g. `CUBLAS_WORKSPACE_CONFIG=:4096:8` with "
               "`torch.use_deterministic_algorithms(True)`) and report the shape and dtype to the vendor.",
    ),
)
def check_matmul_determinism(ctx: CheckContext) -> CheckOutcome:
    repetitions = int(ctx.params["repetitions"])
    gen = ctx.generator()
    cases = []  # (label, variant, a, b, first result)
    for variant in ctx.variants(include_tf32=True):
        for batch, m, k, n in SHAPES[ctx.params["shapes"]]:
            lead = (batch,) if batch else ()
            a, _ = place(draw((*lead, m, k), gen), variant, ctx.device)
            b, _ = place(draw((*lead, k, n), gen), variant, ctx.device)
            shape = f"{batch}x{m}x{k} @ {batch}x{k}x{n}" if batch else f"{m}x{k} @ {k}x{n}"
            cases.append([f"matmul {variant.name} {shape}", variant, a, b, None])
    first_mismatch = None
    mismatching_runs = 0
    for rep in range(1, repetitions + 1):
        for case in cases:
            label, variant, a, b, reference = case
            with variant.math_mode():
                out = a @ b
            ctx.synchronize()
            if reference is None:
                case[4] = out
                continue
            if not bitwise_equal(out, reference):
                mismatching_runs += 1
                if first_mismatch is None:
                    first_mismatch = describe_difference(label, rep, repetitions, out, reference)
    metrics = [
        Metric(name="repetitions", value=repetitions, unit="count"),
        Metric(name="products", value=len(cases), unit="count"),
        Metric(name="mismatching_runs", value=mismatching_runs, unit="count", threshold=0),
    ]
    if first_mismatch is not None:
        more = f" ({mismatching_runs - 1} more mismatching run(s))" if mismatching_runs > 1 else ""
        return CheckOutcome(Status.FAIL, f"{first_mismatch}{more}.", metrics)
    return CheckOutcome(
        Status.PASS,
        f"{len(cases)} matrix products repeated {repetitions} times each gave bit-identical results every time.",
        metrics,
    )

