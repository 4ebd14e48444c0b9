"""Flatten many reports into per-device figures: what each node's devices measured, ready to compare.

A node is the report's host name; a device is (node, device id). When a node sent several reports, each
device's figure is the median over them, so repeats make a figure steadier without making a node weigh more.
Devices are compared only with others of the same model and software (torch and vendor stack versions):
a driver upgrade is a different population, not an outlier.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from acceldoctor.baseline.baseline import Direction, direction_for
from acceldoctor.report.model import Report, Result, Status

_MEASURED = frozenset({Status.PASS, Status.WARN, Status.FAIL})


@dataclass(frozen=True)
class DeviceKey:
    node: str
    device: str

    def __str__(self) -> str:
        return f"{self.node} {self.device}"


@dataclass(frozen=True)
class MetricKey:
    check: str
    metric: str
    dtype: str | None

    def __str__(self) -> str:
        return f"{self.check} {self.metric}" + (f" ({self.dtype})" if self.dtype else "")


@dataclass
class DeviceFigures:
    """Everything one device (on one node) reported, over all of the node's reports."""

    key: DeviceKey
    model: str
    software: str
    values: dict[MetricKey, list[float]] = field(default_factory=dict)
    units: dict[MetricKey, str] = field(default_factory=dict)
    problems: list[Result] = field(default_factory=list)  # results whose status is not pass/skip

    def figure(self, metric: MetricKey) -> float:
        return statistics.median(self.values[metric])

    def direction(self, metric: MetricKey) -> Direction | None:
        return direction_for(self.units[metric])


def software_of(report: Report) -> str:
    """One line naming the software a report ran with; devices are compared only within the same line."""
    parts = [f"torch {report.host.torch}"] if report.host.torch else []
    parts += [f"{name} {version}" for name, version in sorted(report.host.stack.items())]
    return ", ".join(parts) or "unknown software"


def collect_devices(reports: Iterable[Report]) -> list[DeviceFigures]:
    """One DeviceFigures per device and software set (a node upgraded between reports counts once per version)."""
    devices: dict[tuple[DeviceKey, str], DeviceFigures] = {}
    for report in reports:
        names = {d.id: d.name for d in report.devices}
        software = software_of(report)
        for result in report.results:
            key = DeviceKey(report.host.hostname, result.device)
            figures = devices.get((key, software))
            if figures is None:
                figures = DeviceFigures(key, names.get(result.device, result.device), software)
                devices[(key, software)] = figures
            if result.status not in (Status.PASS, Status.SKIP):
                figures.problems.append(result)
            if result.status not in _MEASURED:
                continue
            for metric in result.metrics:
                if metric.value is None or not math.isfinite(metric.value):
                    continue
                mkey = MetricKey(result.check, metric.name, metric.dtype)
                figures.values.setdefault(mkey, []).append(float(metric.value))
                figures.units[mkey] = metric.unit
    return list(devices.values())
