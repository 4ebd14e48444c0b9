"""GEMM burn: the same large matrix product, over and over, every result compared with the first.

As gpu-burn does, the product of fixed seeded inputs is computed once as the golden, then recomputed for the
whole run; a deterministic kernel must give the identical bits every time, so any element that differs (or
turns NaN) is silent data corruption, counted per interval. Throughput is measured per interval as well, so
a device that slows as it heats shows as drift (stress/drift.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from acceldoctor.devices.backends import synchronize


@dataclass
class Interval:
    """What one device did during one sampling interval."""

    t_s: float  # seconds since the burn started, at the end of the interval
    iterations: int
    wrong_elements: int
    nan_elements: int
    tflops: float

    def as_dict(self) -> dict:
        return asdict(self)


def burn_size(device: torch.device) -> int:
    """A product large enough to keep the device busy, small enough to iterate many times per interval."""
    return 512 if device.type == "cpu" else 8192


def gemm_burn(device: torch.device, duration_s: float, *, interval_s: float = 1.0, size: int | None = None,
              dtype: torch.dtype = torch.float32, seed: int = 0,
              on_interval: Callable[[Interval], None] | None = None) -> list[Interval]:
    """Recompute one seeded `size` x `size` product for `duration_s` and count elements that differ from the first."""
    device = torch.device(device)
    n = size or burn_size(device)
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    golden = torch.mm(a, b)
    synchronize(device)
    flops = 2.0 * n**3
    begin = time.perf_counter()
    intervals: list[Interval] = []
    iterations = wrong = nan = 0
    window_start = begin
    while True:
        out = torch.mm(a, b)
        differs = out != golden  # NaN differs from everything, so it is also counted as wrong
        wrong += int(differs.sum())
        nan += int(torch.isnan(out).sum())
        iterations += 1
        now = time.perf_counter()
        if now - window_start >= interval_s or now - begin >= duration_s:
            synchronize(device)
            now = time.perf_counter()
            sample = Interval(round(now - begin, 3), iterations, wrong, nan,
                              flops * iterations / (now - window_start) / 1e12)
            intervals.append(sample)
            if on_interval is not None:
                on_interval(sample)
            iterations = wrong = nan = 0
            window_start = now
            if now - begin >= duration_s:
                return intervals
