"""Time device work as a distribution, in the spirit of torch.utils.benchmark's Timer and Measurement.

Asynchronous devices are timed with their own events where torch offers them (`torch.Event` with
timing), so host-side launch overhead never counts as device time; otherwise (CPU) with a monotonic
host clock around synchronized work. Every measurement warms up first, then repeats, and reports the
median and the interquartile range — never a single timing.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from acceldoctor.devices.backends import synchronize


@dataclass(frozen=True)
class Measurement:
    """Seconds per call over `times` (one entry per repeat)."""

    times: tuple[float, ...]
    calls_per_repeat: int

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def iqr(self) -> float:
        if len(self.times) < 4:
            return max(self.times) - min(self.times)
        q1, _, q3 = statistics.quantiles(self.times, n=4)
        return q3 - q1

    @property
    def relative_spread(self) -> float:
        """IQR over median: how noisy the measurement was."""
        return self.iqr / self.median if self.median > 0 else float("inf")

    def rate(self, work: float) -> float:
        """`work` per second at the median (e.g. FLOPs -> FLOP/s)."""
        return work / self.median if self.median > 0 else float("inf")


def _device_events(device: torch.device):
    if device.type == "cpu" or not hasattr(torch, "Event"):
        return None
    try:
        probe = torch.Event(device=device, enable_timing=True)
        probe.record()
        synchronize(device)
        return lambda: torch.Event(device=device, enable_timing=True)
    except (RuntimeError, TypeError, ValueError):
        return None


def measure(fn: Callable[[], object], device: torch.device, *, warmup: int = 3, repeats: int = 10,
            calls_per_repeat: int = 1, min_repeat_s: float = 0.0) -> Measurement:
    """Run `fn` `warmup` times, then `repeats` timed batches of `calls_per_repeat` calls each.

    With `min_repeat_s`, the batch size grows (doubling) until one batch lasts at least that long, so
    that very short calls are not lost in timer resolution.
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    new_event = _device_events(device)

    def time_batch(calls: int) -> float:
        if new_event is not None:
            start, end = new_event(), new_event()
            start.record()
            for _ in range(calls):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        begin = time.perf_counter()
        for _ in range(calls):
            fn()
        synchronize(device)
        return time.perf_counter() - begin

    calls = max(1, calls_per_repeat)
    while min_repeat_s and time_batch(calls) < min_repeat_s and calls < 1 << 20:
        calls *= 2
    times = tuple(time_batch(calls) / calls for _ in range(repeats))
    return Measurement(times=times, calls_per_repeat=calls)
