"""Throughput drift: is a device now markedly slower than it was at the start of the run? Pure functions."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Drift:
    start_tflops: float  # median over the reference window at the start
    end_tflops: float  # median over the same length of time at the end
    change: float  # end / start - 1 (negative: slower)


def throughput_drift(samples: list[tuple[float, float]], *, window_s: float = 60.0) -> Drift | None:
    """Compare the median throughput of the first `window_s` (or first quarter, for short runs) with the last.

    `samples` are (seconds since start, TFLOP/s) per interval. None when there are too few to compare (under 4).
    """
    if len(samples) < 4:
        return None
    duration = samples[-1][0]
    window = min(window_s, duration / 4)
    first = [v for t, v in samples if t <= window] or [samples[0][1]]
    last = [v for t, v in samples if t >= duration - window] or [samples[-1][1]]
    start, end = statistics.median(first), statistics.median(last)
    return Drift(start, end, end / start - 1 if start > 0 else 0.0)
