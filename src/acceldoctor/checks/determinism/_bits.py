"""Describe how two results that should be bit-identical differ (shared by the determinism checks)."""

from __future__ import annotations

import torch

from acceldoctor.checks.numerics import bits_of
from acceldoctor.faults import suspended


def describe_difference(label: str, rep: int, repetitions: int, out: torch.Tensor, reference: torch.Tensor) -> str:
    """Which result, which repetition, how many elements differ, the first one and both values (no full stop)."""
    with suspended():
        a, r = out.detach().cpu(), reference.detach().cpu()
        differs = (bits_of(a) != bits_of(r)).reshape(-1)
        count = int(differs.sum())
        flat = int(torch.nonzero(differs)[0]) if count else 0
        index = [int(i) for i in torch.unravel_index(torch.tensor(flat), a.shape)] if a.dim() else []
        now, before = a.reshape(-1)[flat].item(), r.reshape(-1)[flat].item()
    return (f"{label}: repetition {rep} of {repetitions} differs from the first result in {count} of "
            f"{a.numel()} element(s), first at {index}: {now:.9g} instead of {before:.9g}")
