"""correctness.conv2d: F.conv2d forward and gradients over stride, padding, dilation, groups and layouts."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from acceldoctor.checks.context import CheckContext, CheckOutcome, Verdict
from acceldoctor.checks.correctness._grad import Grad, run_both, unsupported_dtype
from acceldoctor.checks.correctness._inputs import draw
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.faults import suspended


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


# (N, C_in, H, W), (C_out, kernel), stride, padding, dilation, groups, channels_last
CASES = {
    "quick": [
        ((2, 3, 17, 17), (5, 3), 1, 1, 1, 1, False),
        ((1, 4, 23, 19), (7, 5), 2, 0, 1, 1, True),
        ((2, 6, 15, 13), (9, 3), 1, 2, 2, 3, False),
        ((1, 8, 9, 11), (8, 3), 1, 1, 1, 8, True),
        ((3, 5, 7, 7), (3, 1), 1, 0, 1, 1, False),
    ],
    "standard": [
        ((2, 3, 17, 17), (5, 3), 1, 1, 1, 1, False),
        ((1, 4, 23, 19), (7, 5), 2, 0, 1, 1, True),
        ((2, 6, 15, 13), (9, 3), 1, 2, 2, 3, False),
        ((1, 8, 9, 11), (8, 3), 1, 1, 1, 8, True),
        ((3, 5, 7, 7), (3, 1), 1, 0, 1, 1, False),
        ((2, 64, 28, 28), (64, 3), 1, 1, 1, 1, True),
        ((1, 17, 33, 31), (33, 7), 3, 3, 1, 1, False),
        ((4, 32, 16, 16), (48, 3), 2, 1, 1, 4, True),
        ((1, 3, 224, 224), (16, 7), 2, 3, 1, 1, False),
    ],
}


def _reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride: int, padding: int,
               dilation: int, groups: int) -> torch.Tensor:
    """Convolution as unfold + batched matmul in float64: independent of the conv kernels under test."""
    n, _, h, wd = x.shape
    c_out, c_per_group, kh, kw = w.shape
    cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)  # N, C*kh*kw, L
    cols = cols.reshape(n, groups, c_per_group * kh * kw, -1)
    wg = w.reshape(groups, c_out // groups, c_per_group * kh * kw)
    out = torch.einsum("gok,ngkl->ngol", wg, cols).reshape(n, c_out, -1)
    h_out = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    w_out = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    return out.reshape(n, c_out, h_out, w_out) + b.reshape(1, -1, 1, 1)


def _device_conv(x, w, b, stride, padding, dilation, groups):
    return F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


@register_check(
    id="correctness.conv2d",
    title="2-D convolutions give the right outputs and gradients in every dtype and memory layout",
    levels=("quick", "standard", "full"),
    tolerances=("conv2d", "conv2d.backward"),
    params=(Param("cases", "standard", "Which convolution set to sweep.", {"quick": "quick"}, choices=tuple(CASES)),),
    doc=CheckDoc(
        verifies="`torch.nn.functional.conv2d` with bias over strides 1-3, zero and non-zero padding, "
                 "dilation, grouped and depthwise convolutions, 1x1 to 7x7 kernels, odd channel counts and "
                 "spatial sizes, and the channels_last memory format as the non-contiguous case, in fp32, "
                 "bf16, fp16 and TF32 where the device has it. The output and the gradients of input, weight "
                 "and bias are compared element by element with a float64 unfold-and-matmul convolution of "
                 "the same rounded inputs on the CPU.",
        why="Convolution libraries (cuDNN, MIOpen, oneDNN, CANN) pick among many algorithms per shape, "
            "layout and dtype: implicit GEMM, Winograd, FFT, direct kernels for depthwise. The rarely used "
            "ones (dilated, grouped, channels_last, odd sizes at tile borders) are where vendors ship wrong "
            "results, and each backward (data and filter gradient) is a separate algorithm choice.",
        failure_means="The device's convolution, or its input/weight/bias gradient, returned numbers further "
                      "from the exact value than rounding explains; the message names the configuration, "
                      "dtype and element. A crash here (the process dies) points at the convolution library "
                      "or driver itself.",
        remedy="Re-run with `--select correctness.conv2d`; try the failing configuration in the other memory "
               "format or with the vendor's algorithm search/benchmark mode off to isolate the algorithm; "
               "update the convolution library (cuDNN/MIOpen/oneDNN/CANN) and driver; report the "
               "configuration and dtype to the vendor with the JSON report attached.",
    ),
)
def check_conv2d(ctx: CheckContext) -> CheckOutcome:
    verdict = Verdict("conv2d")
    gen = ctx.generator(23)
    for variant in ctx.variants(include_tf32=True):
        with variant.math_mode():
            for x_shape, (c_out, k), stride, padding, dilation, groups, cl in CASES[ctx.params["cases"]]:
                c_in = x_shape[1]
                fan_in = c_in // groups * k * k
                layout = _channels_last if cl else None
                inputs = [Grad(draw(x_shape, gen), layout),
                          Grad(draw((c_out, c_in // groups, k, k), gen, scale=fan_in ** -0.5), layout),
                          Grad(draw((c_out,), gen)), stride, padding, dilation, groups]
                case = (f"conv2d {'x'.join(map(str, x_shape))} -> {c_out} channels, {k}x{k} kernel, "
                        f"stride {stride}, padding {padding}, dilation {dilation}, groups {groups}"
                        + (", channels_last" if cl else ""))
                try:
                    run = run_both(ctx, variant, _device_conv, _reference, inputs, gen)
                except (RuntimeError, NotImplementedError) as exc:
                    if unsupported_dtype(exc, verdict, "conv2d", variant):
                        break
                    raise
                _judge(verdict, variant, case, run, fan_in)
    return verdict.outcome()


def _judge(verdict: Verdict, variant, case: str, run, fan_in: int) -> None:
    x, w, b, stride, padding, dilation, groups = run.inputs
    n, c_out, h_out, w_out = run.ref_out.shape
    # Magnitudes: the same convolution and its gradients over absolute values (no cancellation credit).
    leaves = [t.abs().requires_grad_() for t in (x, w, b)]
    with suspended(), torch.enable_grad():
        out_mag = _reference(*leaves, stride, padding, dilation, groups)
        grad_mags = torch.autograd.grad(out_mag, leaves, run.upstream.abs())
    verdict.compare(case, run.out, run.ref_out, variant, op="conv2d", reduction_length=fan_in,
                    magnitude=out_mag.detach())
    spatial = n * h_out * w_out
    lengths = {"input": c_out // groups * w.shape[-1] * w.shape[-2], "weight": spatial, "bias": spatial}
    for (name, k), got, want, mag in zip(lengths.items(), run.grads, run.ref_grads, grad_mags, strict=True):
        verdict.compare(f"{case}, grad of {name}", got, want, variant, op="conv2d.backward", reduction_length=k,
                        magnitude=mag)
