"""correctness.elementwise: exp, log, tanh, GELU and SiLU (forward and backward) against a float64 golden."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from acceldoctor.checks.context import CheckContext, CheckOutcome, Verdict
from acceldoctor.checks.correctness._inputs import draw, golden, place, transposed_view
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.faults import suspended

INF, NAN = float("inf"), float("nan")
# Values every dtype must get right; rounded to the dtype first, so 1e5 becomes inf in float16.
# exp overflows above ~88.72 in fp32/bf16 and above ~11.09 in fp16: the golden is then inf.
EXP_POINTS = [0.0, -0.0, 1.0, -1.0, 10.0, 11.0, 11.5, 12.0, 80.0, 88.0, 88.5, 89.0, 100.0, 1e3,
              -80.0, -87.0, -104.0, -200.0, -1e4, INF, -INF, NAN]
LOG_POINTS = [0.0, -0.0, 1.0, 2.0, 0.5, 1e-3, 1e-4, 6e-8, 1e-30, 2e-38, 65504.0, 3e38, -1.0, -1e-20, INF, -INF, NAN]
TANH_POINTS = [0.0, -0.0, 1e-30, -1e-30, 1e-6, 0.5, -0.5, 5.0, 9.0, 20.0, -20.0, 1e4, -1e4, INF, -INF, NAN]
# GELU/SiLU at -inf are inf * 0 (NaN) by their defining formulas, a convention not worth enforcing; and
# SiLU between about -104 and -89 is a float32 underflow zone where sigmoid legitimately flushes to zero.
ACT_POINTS = [0.0, -0.0, 1e-30, -1e-30, 1e-6, -1e-6, 0.5, -0.5, 3.0, -3.0, 8.0, -8.0, 30.0, -30.0, 80.0,
              -80.0, 1e4, -1e4, 3e38, INF, NAN]


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def _sweep(name: str, shape: tuple[int, ...], gen: torch.Generator, low: float, high: float) -> torch.Tensor:
    """Uniform in [low, high); log-uniform for log, so relative accuracy is seen across magnitudes."""
    if name == "log":
        return torch.exp(draw(shape, gen, low=torch.log(torch.tensor(low)).item(),
                              high=torch.log(torch.tensor(high)).item()))
    return draw(shape, gen, low=low, high=high)


def _special_points(name: str, points: list[float], variant) -> list[float]:
    """The op's special points plus subnormals of the dtype (a device flushing those to zero errs by less
    than `tiny`, which the comparison allows). log is spared subnormal inputs: flush-to-zero is a legitimate
    mode of many accelerators and turns log(x) into -inf there."""
    tiny = torch.finfo(variant.dtype).tiny
    subnormals = [tiny / 2, -tiny / 4, tiny / 64]
    if name == "log":
        return [p for p in points if p == 0 or not abs(p) < tiny or abs(torch.tensor(p).to(variant.dtype)) == 0]
    return points + subnormals


@dataclass(frozen=True)
class Op:
    fn: Callable[[torch.Tensor], torch.Tensor]
    tolerance: str
    points: list[float]  # special values
    sweep: tuple[float, float]  # range of the random values
    grad_tolerance: str | None = None
    # Error scale of the derivative per unit of incoming gradient. Derivatives such as 1 - tanh(x)^2 or
    # Phi(x) + x*phi(x) are built from values known to an absolute accuracy of ~eps (tanh, Phi, sigmoid
    # near 1), multiplied by whatever multiplies them in the formula.
    grad_scale: Callable[[torch.Tensor], torch.Tensor] | None = None


OPS = {
    "exp": Op(torch.exp, "exp", EXP_POINTS, (-20.0, 20.0)),
    "log": Op(torch.log, "log", LOG_POINTS, (1e-3, 1e3)),
    # d tanh = 1 - t^2
    "tanh": Op(torch.tanh, "tanh", TANH_POINTS, (-6.0, 6.0), "tanh.backward", lambda x: torch.ones_like(x)),
    # d gelu = Phi(x) + x * phi(x)
    "gelu": Op(F.gelu, "gelu", ACT_POINTS, (-8.0, 8.0), "gelu.backward", lambda x: 1 + x.abs()),
    # d gelu_tanh = (1 + t)/2 + x/2 * (1 - t^2) * u'(x), u'(x) = sqrt(2/pi) * (1 + 3 * 0.044715 * x^2)
    "gelu(approximate='tanh')": Op(_gelu_tanh, "gelu", ACT_POINTS, (-8.0, 8.0), "gelu.backward",
                                   lambda x: 1 + 0.4 * x.abs() * (1 + 0.134 * x * x)),
    # d silu = s * (1 + x * (1 - s)), s = sigmoid(x)
    "silu": Op(F.silu, "silu", ACT_POINTS, (-20.0, 20.0), "silu.backward", lambda x: 1 + x.abs()),
}


@register_check(
    id="correctness.elementwise",
    title="exp, log, tanh, GELU and SiLU give the right values and gradients in every dtype",
    levels=("quick", "standard", "full"),
    tolerances=("exp", "log", "tanh", "gelu", "silu", "tanh.backward", "gelu.backward", "silu.backward"),
    params=(Param("elements", 131_071, "Random values per op and dtype (an odd count, so vector loops "
                  "leave a tail).", {"quick": 4_093}),),
    doc=CheckDoc(
        verifies="`torch.exp`, `torch.log`, `torch.tanh`, `F.gelu` (exact and `approximate='tanh'`) and "
                 "`F.silu` on a random sweep of each function's working range and on special points: exp "
                 "overflow (x > 88.7 in fp32 and bf16, x > 11.1 in fp16 must give inf), log of 0 (-inf), of "
                 "negative numbers (NaN), of tiny and subnormal values, saturation of tanh/GELU/SiLU at "
                 "large |x|, inf and NaN inputs, and a transposed (non-contiguous) input; plus the gradients "
                 "of tanh, GELU and SiLU through autograd. fp32, bf16 and fp16 results are compared with "
                 "float64 CPU results (and float64 CPU autograd) from the same rounded inputs.",
        why="Activations and exp/log run in every layer of every model (softmax, attention, losses, GELU and "
            "SiLU MLPs). Vendors implement them with fast polynomial or table approximations, and the errors "
            "reported by users are at the edges: exp that returns a large finite number instead of inf, "
            "log(0) that is finite, NaN from GELU at large |x|, tanh that loses precision near zero, "
            "non-contiguous tensors taking a slower, wrong path, or a backward kernel that disagrees with "
            "its forward.",
        failure_means="The device computed an activation or its gradient further from the exact value than "
                      "a correct implementation rounds, or returned a wrong inf/NaN: the message names the "
                      "function, dtype, input layout and element. Models still run but lose accuracy, or "
                      "produce NaN losses for inputs that are fine elsewhere.",
        remedy="Re-run with `--select correctness.elementwise` to confirm; look at which input the message "
               "names (overflow, tiny or special values) and whether float32 is also affected; disable "
               "vendor fast-math or fused-activation options if any; update the kernel library or framework "
               "plugin and report the function, dtype and value to the vendor.",
    ),
)
def check_elementwise(ctx: CheckContext) -> CheckOutcome:
    verdict = Verdict("elementwise")
    gen = ctx.generator()
    n = int(ctx.params["elements"])
    for variant in ctx.variants():
        for name, op in OPS.items():
            low, high = op.sweep
            _forward(ctx, verdict, variant, f"{name} of {n} values in [{low:g}, {high:g})", op,
                     _sweep(name, (n,), gen, low, high))
            special = torch.tensor(_special_points(name, op.points, variant), dtype=torch.float64)
            _forward(ctx, verdict, variant, f"{name} of special values (overflow, tiny, inf, nan)", op, special)
            _forward(ctx, verdict, variant, f"{name} of transposed (non-contiguous) 33x65", op,
                     _sweep(name, (33, 65), gen, low, high), layout=transposed_view)
            if op.grad_tolerance is not None:
                _backward(ctx, verdict, variant, f"{name} backward of {n} values in [-8, 8)", op,
                          draw((n,), gen, low=-8.0, high=8.0), draw((n,), gen))
    return verdict.outcome()


def _forward(ctx, verdict, variant, case, op: Op, x64, layout=None) -> None:
    x_dev, x_ref = place(x64, variant, ctx.device)
    if layout is not None:
        x_dev = layout(x_dev)
    actual = op.fn(x_dev)
    ctx.synchronize()
    expected = golden(op.fn, x_ref)
    # GELU is x * Phi(x): Phi is computed to an absolute (not relative) accuracy, so for x << 0 the
    # natural error scale is |x|, not the tiny |gelu(x)|.
    magnitude = x_ref.abs() if op.tolerance == "gelu" else None
    verdict.compare(case, actual, expected, variant, op=op.tolerance, magnitude=magnitude)


def _backward(ctx, verdict, variant, case, op: Op, x64, grad64) -> None:
    x_dev, x_ref = place(x64, variant, ctx.device)
    g_dev, g_ref = place(grad64, variant, ctx.device)
    x_dev.requires_grad_(True)
    with torch.enable_grad():
        (grad_dev,) = torch.autograd.grad(op.fn(x_dev), x_dev, g_dev)
    ctx.synchronize()
    with suspended(), torch.enable_grad():
        x_gold = x_ref.clone().requires_grad_(True)
        (grad_gold,) = torch.autograd.grad(op.fn(x_gold), x_gold, g_ref)
    magnitude = g_ref.abs() * op.grad_scale(x_ref)
    verdict.compare(case, grad_dev, grad_gold.detach(), variant, op=op.grad_tolerance, magnitude=magnitude)
