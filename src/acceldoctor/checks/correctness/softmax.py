"""correctness.softmax: softmax and log_softmax (forward and gradient) incl. large logits and -inf masks."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from acceldoctor.checks.context import CheckContext, CheckOutcome, Verdict
from acceldoctor.checks.correctness._grad import Grad, run_both, split_magnitude, unsupported_dtype
from acceldoctor.checks.correctness._inputs import draw, transposed_view
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.faults import suspended

# (label, shape, dim, kind): kind picks the values: normal, x100 logits, +-1000, -inf masks, transposed.
CASES = {
    "quick": [("", (17, 4097), -1, "normal"), ("", (33, 9), 0, "normal"), ("", (4, 65, 7), 1, "normal"),
              ("large logits (x100)", (9, 257), -1, "x100"), ("logits around +-1000", (5, 129), -1, "pm1000"),
              ("-inf attention mask with a fully masked row", (12, 31), -1, "masked"),
              ("transposed input", (19, 23), -1, "transposed")],
    "standard": [("", (17, 4097), -1, "normal"), ("", (33, 9), 0, "normal"), ("", (4, 65, 7), 1, "normal"),
                 ("large logits (x100)", (9, 257), -1, "x100"), ("logits around +-1000", (5, 129), -1, "pm1000"),
                 ("-inf attention mask with a fully masked row", (12, 31), -1, "masked"),
                 ("transposed input", (19, 23), -1, "transposed"), ("", (8, 32003), -1, "normal"),
                 ("large logits (x100)", (8, 16384), -1, "x100"), ("", (2, 8, 129, 129), -1, "masked"),
                 ("", (1, 1), -1, "normal"), ("", (3, 1, 5), 1, "normal")],
}


def _values(shape, kind: str, dim: int, gen: torch.Generator) -> torch.Tensor:
    if kind == "x100":
        return draw(shape, gen, scale=100.0)
    if kind == "pm1000":
        return draw(shape, gen, low=-1000.0, high=1000.0)
    x = draw(shape, gen, scale=2.0)
    if kind == "masked":  # random holes as padding masks make them; the first row fully masked
        masked = torch.rand(shape, generator=gen) < 0.3
        masked.reshape(-1, shape[-1])[0] = True
        x = x.masked_fill(masked, float("-inf"))
    return x


@register_check(
    id="correctness.softmax",
    title="Softmax and log-softmax stay right for long rows, huge logits and masked entries",
    levels=("quick", "standard", "full"),
    tolerances=("softmax", "softmax.backward", "log_softmax", "log_softmax.backward"),
    params=(Param("cases", "standard", "Which shape set to sweep.", {"quick": "quick"}, choices=tuple(CASES)),),
    doc=CheckDoc(
        verifies="`F.softmax` and `F.log_softmax` over the last, first and a middle dimension; long rows "
                 "(4097, 32003 entries) that cross block sizes; logits scaled x100 and spread over +-1000, "
                 "which overflow exp() unless the kernel subtracts the row maximum; -inf entries as attention "
                 "masks put them, including a fully masked row whose NaN output must match what PyTorch "
                 "defines on the CPU in float64; and a transposed (non-contiguous) input. Outputs and input "
                 "gradients are compared with float64 CPU results from the same rounded inputs.",
        why="Softmax sits in every attention layer and every classifier. Kernels that skip the max "
            "subtraction, accumulate the row sum in fp16/bf16, mishandle -inf or break at block boundaries "
            "are a recurring source of NaN losses and silently wrong attention on new accelerator stacks.",
        failure_means="The device's softmax or log-softmax (or its gradient) is wrong for the named case, "
                      "dtype and element: typically NaN or inf for large logits (no max subtraction), a wrong "
                      "row sum for long rows, or masked entries that leak probability. Models produce NaN "
                      "losses or degraded attention on this stack.",
        remedy="Re-run with `--select correctness.softmax`; if only large logits fail, the kernel lacks the "
               "max subtraction: report it to the vendor and, as a stopgap, compute softmax in float32; if "
               "only long rows fail, suspect the reduction across blocks. Attach the JSON report to a vendor "
               "bug report.",
    ),
)
def check_softmax(ctx: CheckContext) -> CheckOutcome:
    verdict = Verdict("softmax")
    gen = ctx.generator(37)
    for variant in ctx.variants():
        try:
            for label, shape, dim, kind in CASES[ctx.params["cases"]]:
                values = _values(shape, kind, dim, gen)
                layout = transposed_view if kind == "transposed" else None
                for name, fn in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
                    case = f"{name} {'x'.join(map(str, shape))} dim={dim}" + (f" {label}" if label else "")
                    run = run_both(ctx, variant, fn, fn, [Grad(values, layout), dim], gen)
                    _judge(verdict, variant, case, name, run, dim)
        except (RuntimeError, NotImplementedError) as exc:
            if not unsupported_dtype(exc, verdict, "softmax", variant):
                raise
    return verdict.outcome()


def _judge(verdict: Verdict, variant, case: str, name: str, run, dim: int) -> None:
    k = run.inputs[0].shape[dim]
    with suspended():
        x = run.inputs[0]
        m = x.amax(dim, keepdim=True)
        shifted = torch.where(torch.isfinite(x), (x - m).abs(), torch.zeros_like(x))  # |x - max|: exp()'s gain
        p = torch.softmax(x, dim).nan_to_num(0.0)
        log_s = torch.where(torch.isfinite(m), torch.logsumexp(x, dim, keepdim=True) - m, torch.zeros_like(m))
        g = run.upstream.abs()
        w = p * (1 + shifted)  # y's error scale: its rounding, and exp() of a rounded x - max
        if name == "softmax":
            # y = exp(x - m) / S: rounding x - m moves y by eps |x - m| relative; S's error moves all of y.
            out_mag = split_magnitude(name, k, variant, p * shifted, p)
            # dx = y (g - sum(g y)) from the stored y: kernels may form y g - y sum(g y), which cancel.
            grad_mag = split_magnitude(f"{name}.backward", k, variant, w * g + p * (g * w).sum(dim, keepdim=True),
                                       p * (g * p).sum(dim, keepdim=True))
        else:
            # z = x - m - log S: absolute errors eps (|x - m| + log S + 1) (kernels may round S or log S to the
            # dtype), plus the float32 sum's relative error.
            out_mag = split_magnitude(name, k, variant, 1 + shifted + log_s, torch.ones_like(x))
            # dx = g - exp(z) sum(g): exp(z) is as accurate as z; the sum of g is a reduction.
            grad_mag = split_magnitude(f"{name}.backward", k, variant,
                                       g + p * (1 + shifted + log_s) * g.sum(dim, keepdim=True),
                                       p * g.sum(dim, keepdim=True))
    verdict.compare(case, run.out, run.ref_out, variant, op=name, reduction_length=k, magnitude=out_mag)
    verdict.compare(f"{case}, gradient", run.grads[0], run.ref_grads[0], variant, op=f"{name}.backward",
                    reduction_length=k, magnitude=grad_mag)
