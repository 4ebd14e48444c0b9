"""correctness.normalization: F.layer_norm and F.rms_norm, forward and gradients, incl. large mean offsets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from acceldoctor.checks.context import CheckContext, CheckOutcome, Verdict
from acceldoctor.checks.correctness._grad import Grad, run_both, unsupported_dtype
from acceldoctor.checks.correctness._inputs import draw, transposed_view
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.faults import suspended

EPS = 1e-5
# (shape, normalized dims, affine, offset, transposed): odd and long normalized sizes, 2-D normalized shape,
# inputs 1e4 + N(0, 1) where a one-pass E[x^2] - E[x]^2 variance cancels catastrophically.
CASES = {
    "quick": [((17, 4097), 1, True, 0.0, False), ((3, 5, 33), 1, False, 0.0, False),
              ((9, 257), 1, True, 1e4, False), ((4, 7, 9), 2, True, 0.0, False), ((33, 65), 1, True, 0.0, True),
              ((1, 1), 1, True, 0.0, False)],
    "standard": [((17, 4097), 1, True, 0.0, False), ((3, 5, 33), 1, False, 0.0, False),
                 ((9, 257), 1, True, 1e4, False), ((4, 7, 9), 2, True, 0.0, False),
                 ((33, 65), 1, True, 0.0, True), ((1, 1), 1, True, 0.0, False), ((16, 8192), 1, True, 0.0, False),
                 ((4, 16385), 1, True, 1e4, False), ((2, 32, 1024), 1, True, 0.0, False),
                 ((4, 16, 31, 31), 3, True, 0.0, False)],
}


def _reference_layer_norm(x, shape, w=None, b=None):
    dims = tuple(range(-len(shape), 0))
    mean = x.mean(dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dims, keepdim=True)
    y = (x - mean) / torch.sqrt(var + EPS)
    return y if w is None else y * w + b


def _reference_rms_norm(x, shape, w):
    dims = tuple(range(-len(shape), 0))
    return x / torch.sqrt((x * x).mean(dims, keepdim=True) + EPS) * w


def _device_layer_norm(x, shape, w=None, b=None):
    return F.layer_norm(x, shape, w, b, eps=EPS)


def _device_rms_norm(x, shape, w):
    return F.rms_norm(x, shape, w, eps=EPS)


@register_check(
    id="correctness.normalization",
    title="LayerNorm and RMSNorm give the right outputs and gradients, even for inputs with a large mean",
    levels=("quick", "standard", "full"),
    tolerances=("layer_norm", "layer_norm.backward", "rms_norm", "rms_norm.backward"),
    params=(Param("cases", "standard", "Which shape set to sweep.", {"quick": "quick"}, choices=tuple(CASES)),),
    doc=CheckDoc(
        verifies="`F.layer_norm` with and without elementwise affine, and `F.rms_norm` (torch >= 2.4), over "
                 "odd and long normalized sizes (1, 33, 4097, 16385), a 2-D and 3-D normalized shape, a "
                 "transposed (non-contiguous) input, and inputs of 1e4 + N(0, 1) whose variance a naive "
                 "one-pass E[x^2] - E[x]^2 formula destroys by cancellation, in fp32, bf16 and fp16. Outputs "
                 "and the gradients of input, weight and bias are compared with float64 CPU results from the "
                 "same rounded inputs.",
        why="Every transformer block normalizes twice. Normalization kernels are fused, hand-written and "
            "reimplemented per vendor; one-pass variance formulas, statistics kept in fp16/bf16, and "
            "block-reduction bugs for long hidden sizes make models diverge or lose quality on one stack "
            "while working on another. The backward's three reductions are rarer paths with their own bugs.",
        failure_means="The device's normalization (or one of its gradients) is wrong for the named case, "
                      "dtype and element. If only the large-offset case fails, the kernel computes the "
                      "variance by a cancelling formula or in low precision; activations with a large mean "
                      "(common after residual additions) then get garbage scaling.",
        remedy="Re-run with `--select correctness.normalization`; report the failing case to the vendor with "
               "the JSON report attached; as a stopgap, compute the normalization in float32 (autocast "
               "usually does) or use the framework's reference implementation instead of the fused kernel.",
    ),
)
def check_normalization(ctx: CheckContext) -> CheckOutcome:
    verdict = Verdict("normalization")
    gen = ctx.generator(41)
    has_rms = hasattr(F, "rms_norm")
    if not has_rms:
        verdict.skip_case(f"F.rms_norm does not exist in torch {torch.__version__} (needs >= 2.4); "
                          "only layer_norm was checked")
    for variant in ctx.variants():
        try:
            for shape, nd, affine, offset, transposed in CASES[ctx.params["cases"]]:
                norm_shape = shape[-nd:]
                x = Grad(offset + draw(shape, gen), transposed_view if transposed else None)
                params = [Grad(1 + 0.5 * draw(norm_shape, gen)), Grad(draw(norm_shape, gen))] if affine else []
                label = (f"{'x'.join(map(str, shape))} over {'x'.join(map(str, norm_shape))}"
                         + ("" if affine else " without affine") + (f", values {offset:g} + N(0,1)" if offset else "")
                         + (", transposed input" if transposed else ""))
                run = run_both(ctx, variant, _device_layer_norm, _reference_layer_norm, [x, norm_shape, *params],
                               gen)
                _judge_layer_norm(verdict, variant, f"layer_norm {label}", run, nd)
                if has_rms:
                    w = params[:1] or [Grad(1 + 0.5 * draw(norm_shape, gen))]
                    run = run_both(ctx, variant, _device_rms_norm, _reference_rms_norm, [x, norm_shape, *w], gen)
                    _judge_rms_norm(verdict, variant, f"rms_norm {label}", run, nd)
        except (RuntimeError, NotImplementedError) as exc:
            if not unsupported_dtype(exc, verdict, "normalization", variant):
                raise
    return verdict.outcome()


def _stats(x: torch.Tensor, nd: int):
    dims = tuple(range(-nd, 0))
    k = 1
    for d in x.shape[-nd:]:
        k *= d
    return dims, k


def _judge_layer_norm(verdict: Verdict, variant, case: str, run, nd: int) -> None:
    x, g = run.inputs[0], run.upstream.abs()
    dims, k = _stats(x, nd)
    affine = len(run.inputs) > 2
    with suspended():
        w = run.inputs[2].abs() if affine else torch.ones(x.shape[-nd:], dtype=torch.float64)
        b = run.inputs[3].abs() if affine else torch.zeros(x.shape[-nd:], dtype=torch.float64)
        mean = x.mean(dims, keepdim=True)
        rstd = (((x - mean) ** 2).mean(dims, keepdim=True) + EPS).rsqrt()
        xhat = ((x - mean) * rstd).abs()
        # cond: the error of x - mean is eps * (|x| + |mean|), scaled by rstd; huge for a large mean offset.
        cond = (x.abs() + mean.abs()) * rstd
        out_mag = w * cond + b
        gw = g * w
        grad_x_mag = rstd * (gw + gw.mean(dims, keepdim=True) + cond * (gw * cond).mean(dims, keepdim=True))
        batch = tuple(range(x.dim() - nd))
        rows = x.numel() // k
    verdict.compare(case, run.out, run.ref_out, variant, op="layer_norm", reduction_length=k, magnitude=out_mag)
    verdict.compare(f"{case}, grad of input", run.grads[0], run.ref_grads[0], variant, op="layer_norm.backward",
                    reduction_length=k, magnitude=grad_x_mag)
    if affine:
        verdict.compare(f"{case}, grad of weight", run.grads[1], run.ref_grads[1], variant,
                        op="layer_norm.backward", reduction_length=rows, magnitude=(g * (xhat + cond)).sum(batch))
        verdict.compare(f"{case}, grad of bias", run.grads[2], run.ref_grads[2], variant,
                        op="layer_norm.backward", reduction_length=rows, magnitude=g.sum(batch))


def _judge_rms_norm(verdict: Verdict, variant, case: str, run, nd: int) -> None:
    x, g, w = run.inputs[0], run.upstream.abs(), run.inputs[2].abs()
    dims, k = _stats(x, nd)
    with suspended():
        rstd = ((x * x).mean(dims, keepdim=True) + EPS).rsqrt()
        xhat = (x * rstd).abs()
        gw = g * w
        grad_x_mag = rstd * (gw + xhat * (gw * xhat).mean(dims, keepdim=True))
        batch = tuple(range(x.dim() - nd))
        rows = x.numel() // k
    verdict.compare(case, run.out, run.ref_out, variant, op="rms_norm", reduction_length=k, magnitude=xhat * w)
    verdict.compare(f"{case}, grad of input", run.grads[0], run.ref_grads[0], variant, op="rms_norm.backward",
                    reduction_length=k, magnitude=grad_x_mag)
    verdict.compare(f"{case}, grad of weight", run.grads[1], run.ref_grads[1], variant, op="rms_norm.backward",
                    reduction_length=rows, magnitude=(g * xhat).sum(batch))
