"""Forward and backward of one op on the device and on its float64 CPU twin, from the same rounded inputs.

Neural-network checks judge gradients as well as outputs: a wrong backward kernel trains a model into
the ground without ever showing a wrong forward number. `run_both` places the inputs (rounded to the
variant's dtype), runs the device op and its autograd backward with a seeded upstream gradient, and
runs the reference function in float64 on the CPU (untouched by injected faults) with the same
rounded inputs and the same rounded upstream gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from acceldoctor.checks.context import CheckContext, Verdict
from acceldoctor.checks.correctness._inputs import draw, place
from acceldoctor.checks.dtypes import DtypeVariant
from acceldoctor.checks.unsupported import is_unsupported
from acceldoctor.faults import suspended
from acceldoctor.messages import first_line


@dataclass
class Grad:
    """A float64 CPU tensor the op differentiates with respect to; `layout` reshapes the device copy."""

    values: torch.Tensor
    layout: Callable[[torch.Tensor], torch.Tensor] | None = None


@dataclass
class Run:
    out: torch.Tensor  # device result, variant dtype
    ref_out: torch.Tensor  # float64 CPU golden
    grads: list[torch.Tensor]  # device gradients, one per Grad input, in order
    ref_grads: list[torch.Tensor]  # float64 CPU golden gradients
    inputs: list[Any]  # float64 CPU copies of the rounded inputs (non-Grad inputs as given)
    upstream: torch.Tensor  # float64 CPU copy of the rounded upstream gradient
    device_inputs: list[torch.Tensor]  # the Grad inputs as the device received them (detached)


def run_both(
    ctx: CheckContext,
    variant: DtypeVariant,
    device_fn: Callable[..., torch.Tensor],
    golden_fn: Callable[..., torch.Tensor],
    inputs: Sequence[Any],
    gen: torch.Generator,
    backward: bool = True,
) -> Run:
    """Run `device_fn(*inputs)` on the device and `golden_fn(*inputs)` in float64 on the CPU.

    `inputs` holds `Grad` (differentiated float tensors), other tensors (indices, masks: moved to
    the device unchanged) and plain Python values. With `backward`, both sides are differentiated
    with respect to every `Grad` input against the same upstream gradient.
    """
    dev_args: list[Any] = []
    ref_args: list[Any] = []
    dev_leaves: list[torch.Tensor] = []
    ref_leaves: list[torch.Tensor] = []
    with suspended():
        for item in inputs:
            if isinstance(item, Grad):
                dev, ref = place(item.values, variant, ctx.device)
                if item.layout is not None:
                    dev = item.layout(dev)
                dev = dev.detach().requires_grad_(backward)
                ref = ref.detach().requires_grad_(backward)
                dev_leaves.append(dev)
                ref_leaves.append(ref)
                dev_args.append(dev)
                ref_args.append(ref)
            elif isinstance(item, torch.Tensor):
                dev_args.append(item.to(ctx.device))
                ref_args.append(item.to("cpu"))
            else:
                dev_args.append(item)
                ref_args.append(item)

    with torch.set_grad_enabled(backward):
        out = device_fn(*dev_args)
    with suspended(), torch.set_grad_enabled(backward):
        ref_out = golden_fn(*ref_args)
    upstream_dev, upstream = place(draw(tuple(ref_out.shape), gen), variant, ctx.device)
    grads: list[torch.Tensor] = []
    ref_grads: list[torch.Tensor] = []
    if backward and dev_leaves:
        grads = list(torch.autograd.grad(out, dev_leaves, upstream_dev))
        with suspended():
            ref_grads = list(torch.autograd.grad(ref_out, ref_leaves, upstream))
    ctx.synchronize()
    plain_inputs = [a.detach() if isinstance(a, torch.Tensor) else a for a in ref_args]
    return Run(out.detach(), ref_out.detach(), [g.detach() for g in grads], [g.detach() for g in ref_grads],
               plain_inputs, upstream, [leaf.detach() for leaf in dev_leaves])


def unsupported_dtype(exc: Exception, verdict: Verdict, op: str, variant: DtypeVariant) -> bool:
    """Record an op the device does not offer in this dtype as a warning; False for any other error.

    A missing kernel is not a wrong number, but a user porting a model in that dtype must know.
    """
    if not is_unsupported(exc):
        return False
    verdict.warn(f"{op} is not available in {variant.name} on this device ({first_line(exc)})")
    return True


# Row reductions of softmax-like ops (sums of exponentials, of gradients, of log-probabilities) must be carried
# in at least float32 whatever the storage dtype: every mainstream kernel does so, and a long row summed in
# fp16/bf16 stagnates. Their rounding errors are therefore in units of float32's eps, not the variant's.
REDUCTION_EPS = torch.finfo(torch.float32).eps


def split_magnitude(op: str, k: int, variant: DtypeVariant, elementwise: torch.Tensor,
                    reduction: torch.Tensor) -> torch.Tensor:
    """A magnitude whose `elementwise` part rounds in the variant's dtype and whose `reduction` part is a
    float32 reduction of length k.

    The tolerance formula bounds eps * accumulation * growth(k) * magnitude; dividing the elementwise part
    by growth(k) keeps it from growing with the row length, and scaling the reduction part by
    eps_float32 / eps keeps a float32 reduction's error from inflating the allowance of fp16/bf16.
    """
    from acceldoctor.checks.tolerances import tolerance

    growth = tolerance(op).growth_factor(k)
    return elementwise / growth + reduction * min(1.0, REDUCTION_EPS / variant.eps)
