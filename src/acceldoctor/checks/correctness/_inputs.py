"""Seeded inputs for correctness checks, and the float64 twin of what the device receives."""

from __future__ import annotations

import torch

from acceldoctor.checks.dtypes import DtypeVariant
from acceldoctor.faults import suspended


def draw(shape: tuple[int, ...], gen: torch.Generator, scale: float = 1.0, low: float | None = None,
         high: float | None = None) -> torch.Tensor:
    """Float64 CPU values: normal(0, scale), or uniform in [low, high) when both are given."""
    if low is not None and high is not None:
        return low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)
    return scale * torch.randn(shape, generator=gen, dtype=torch.float64)


def place(values: torch.Tensor, variant: DtypeVariant, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Round `values` to the variant's dtype and move to the device.

    Returns (device tensor, float64 CPU copy of the rounded values). The golden is computed from the
    rounded copy, so input rounding never counts as the device's error.
    """
    with suspended():
        rounded = values.to(variant.dtype)
        return rounded.to(device), rounded.to(torch.float64)


def transposed_view(t: torch.Tensor) -> torch.Tensor:
    """The same values as a non-contiguous view: a transposed copy, transposed back."""
    return t.transpose(-1, -2).contiguous().transpose(-1, -2)


def golden(fn, *args, **kwargs):
    """Run `fn` as the float64 CPU reference, untouched by injected faults."""
    with suspended(), torch.no_grad():
        return fn(*args, **kwargs)
