"""What every stress workload is: a self-checking step repeated for a share of each interval, and its tally."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch


@dataclass
class Tally:
    """What one workload did on one device during one interval."""

    iterations: int = 0
    wrong_elements: int = 0
    nan_elements: int = 0
    work: float = 0.0  # in the workload's own unit of work (FLOPs, bytes, training steps)
    seconds: float = 0.0
    where: str = ""  # where the first wrong element of the interval was, in words

    def add_errors(self, wrong: int, nan: int, where: str) -> None:
        self.wrong_elements += wrong
        self.nan_elements += nan
        if (wrong or nan) and not self.where:
            self.where = where


class Workload(ABC):
    """One self-checking load. `prepare` computes the golden once; every `step` redoes the work and compares."""

    name: ClassVar[str]
    check: ClassVar[str]  # the check id its verdict is reported under
    unit: ClassVar[str]  # of `rate` in the timeline
    unit_scale: ClassVar[float]  # work units per `unit`
    share: float = 0.25  # of each interval, before normalising over the workloads chosen

    def __init__(self, device: torch.device):
        self.device = device

    @abstractmethod
    def prepare(self) -> None: ...

    @abstractmethod
    def step(self, tally: Tally) -> None: ...

    def flush(self, tally: Tally) -> None:  # noqa: B027 - only workloads that count on the device need it
        """Bring counts kept on the device into `tally` at the end of a slice (one synchronisation per slice)."""

    def describe(self) -> str:
        """A few words on what this workload runs, for messages."""
        return self.name

    def sample(self, tally: Tally) -> dict:
        rate = tally.work / tally.seconds / self.unit_scale if tally.seconds > 0 else 0.0
        out = {"iterations": tally.iterations, "wrong_elements": tally.wrong_elements,
               "nan_elements": tally.nan_elements, "rate": rate, "unit": self.unit}
        if tally.where:
            out["where"] = tally.where
        return out
