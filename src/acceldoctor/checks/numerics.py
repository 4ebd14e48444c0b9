"""Compare a device result with its float64 golden: error bound, relative error, ULPs, worst element."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from acceldoctor.checks.dtypes import DtypeVariant
from acceldoctor.checks.tolerances import Tolerance
from acceldoctor.faults import suspended as faults_suspended


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing one tensor with its golden."""

    ok: bool
    elements: int
    bad_elements: int
    max_rel_error: float
    max_ulp_error: float
    worst_ratio: float  # worst |error| / bound; above 1 fails
    worst_index: tuple[int, ...] | None
    worst_actual: float | None
    worst_expected: float | None
    worst_bound_ulps: float | None
    special_mismatch: str | None  # description of an inf/nan mismatch, if any

    def describe_worst(self) -> str:
        if self.special_mismatch:
            return self.special_mismatch
        if self.worst_index is None:
            return "no element differs"
        return (
            f"element {list(self.worst_index)} is {self.worst_actual:.6g} but should be "
            f"{self.worst_expected:.6g} (relative error {_rel_at(self):.2e}, "
            f"{_ulps_at(self):.1f} ULPs, tolerance {self.worst_bound_ulps:.1f} ULPs)"
        )


def _rel_at(c: Comparison) -> float:
    return abs(c.worst_actual - c.worst_expected) / max(abs(c.worst_expected), 1e-300)


def _ulps_at(c: Comparison) -> float:
    return c.worst_ratio * c.worst_bound_ulps if c.worst_bound_ulps is not None else float("nan")


def ulp_of(values: torch.Tensor, variant: DtypeVariant) -> torch.Tensor:
    """Size of one unit in the last place of `values` (float64) in the variant's arithmetic."""
    mag = values.abs().clamp_min(torch.finfo(variant.dtype).tiny)
    _, exponent = torch.frexp(mag)  # mag = m * 2**exponent with m in [0.5, 1)
    return torch.ldexp(torch.full_like(mag, variant.eps), exponent - 1)


def absolute_floor(variant: DtypeVariant) -> float:
    """Four steps of the dtype's smallest subnormal.

    Rounding into the subnormal range costs half a step, and vectorized exp/log kernels lose a step or
    two more there (measured: 1.5 steps for PyTorch's fp32 CPU softmax). A device that flushes subnormal
    results to zero still fails cases whose exact result is well inside the subnormal range.
    """
    return 4.0 * torch.finfo(variant.dtype).tiny * torch.finfo(variant.dtype).eps


def compare_to_golden(
    actual: torch.Tensor,
    golden: torch.Tensor,
    variant: DtypeVariant,
    tol: Tolerance,
    reduction_length: int = 1,
    magnitude: torch.Tensor | None = None,
) -> Comparison:
    """Judge `actual` (any device, the variant's dtype) against `golden` (CPU float64).

    Non-finite values must agree exactly: NaN where the golden is NaN, the same infinity where the
    golden is infinite or overflows the dtype. Finite elements must lie within the tolerance bound.
    """
    with faults_suspended(), torch.no_grad():
        a = actual.detach().to("cpu", torch.float64)
        g = golden.detach().to("cpu", torch.float64)
        if a.shape != g.shape:
            return _shape_mismatch(a, g)
        # Round-to-nearest overflows to inf only past max + ulp(max)/2.
        overflow_at = torch.finfo(variant.dtype).max * (1 + variant.eps / 2)
        g_rounded = torch.where(g.abs() >= overflow_at, torch.copysign(torch.full_like(g, float("inf")), g), g)

        special = _special_mismatch(a, g_rounded)
        finite = torch.isfinite(a) & torch.isfinite(g_rounded)
        mag = g.abs() if magnitude is None else magnitude.detach().to("cpu", torch.float64).abs()
        bound = variant.eps * (tol.output * g.abs() + tol.accumulation * tol.growth_factor(
            reduction_length) * mag) + absolute_floor(variant)
        err = torch.where(finite, (a - g).abs(), torch.zeros_like(a))
        ratio = torch.where(finite, err / bound, torch.zeros_like(a))
        ulps = torch.where(finite, err / ulp_of(g, variant), torch.zeros_like(a))
        rel = torch.where(finite, err / g.abs().clamp_min(torch.finfo(variant.dtype).tiny), torch.zeros_like(a))
        bad = int((ratio > 1).sum().item())
        n = a.numel()
        if n == 0:
            return Comparison(special is None, 0, 0, 0.0, 0.0, 0.0, None, None, None, None, special)
        flat = int(torch.argmax(ratio).item())
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), a.shape)) if a.dim() else ()
        worst_ratio = float(ratio.reshape(-1)[flat].item())
        worst_bound_ulps = float((bound.reshape(-1)[flat] / ulp_of(g.reshape(-1)[flat], variant)).item())
        has_error = worst_ratio > 0
        return Comparison(
            ok=bad == 0 and special is None,
            elements=n,
            bad_elements=bad + (0 if special is None else 1),
            max_rel_error=float(rel.max().item()),
            max_ulp_error=float(ulps.max().item()),
            worst_ratio=worst_ratio,
            worst_index=index if has_error else None,
            worst_actual=float(a.reshape(-1)[flat].item()),
            worst_expected=float(g.reshape(-1)[flat].item()),
            worst_bound_ulps=worst_bound_ulps,
            special_mismatch=special,
        )


def _special_mismatch(a: torch.Tensor, g: torch.Tensor) -> str | None:
    nan_expected = torch.isnan(g)
    wrong = (nan_expected != torch.isnan(a)) | (torch.isinf(g) & (a != g)) | (torch.isinf(a) & (a != g))
    if not bool(wrong.any()):
        return None
    flat = int(torch.nonzero(wrong.reshape(-1))[0].item())
    index = [int(i) for i in torch.unravel_index(torch.tensor(flat), a.shape)] if a.dim() else []
    count = int(wrong.sum().item())
    return (
        f"element {index} is {a.reshape(-1)[flat].item():.6g} but should be "
        f"{g.reshape(-1)[flat].item():.6g} ({count} element(s) with a wrong inf/nan)"
    )


def _shape_mismatch(a: torch.Tensor, g: torch.Tensor) -> Comparison:
    msg = f"the result has shape {list(a.shape)} but should have {list(g.shape)}"
    return Comparison(False, g.numel(), g.numel(), float("inf"), float("inf"), float("inf"),
                      None, None, None, None, msg)


def bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when both tensors hold exactly the same bits (NaNs with the same payload included)."""
    with faults_suspended():
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if not a.dtype.is_floating_point:
            return bool(torch.equal(a.cpu(), b.cpu()))
        return bool(torch.equal(bits_of(a.detach().cpu()), bits_of(b.detach().cpu())))


_SAME_SIZE_INT = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def bits_of(t: torch.Tensor) -> torch.Tensor:
    """The raw bits of `t` as a same-sized integer tensor (so NaN payloads and -0.0 compare exactly)."""
    return t.contiguous().view(_SAME_SIZE_INT[t.element_size()])
