"""What a check receives (CheckContext) and how it accumulates its verdict (Verdict -> CheckOutcome)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from acceldoctor.checks.dtypes import DtypeVariant, supported_variants
from acceldoctor.checks.numerics import Comparison, compare_to_golden
from acceldoctor.checks.tolerances import tolerance
from acceldoctor.devices.backends import synchronize
from acceldoctor.report.model import Metric, Status


@dataclass
class CheckOutcome:
    status: Status
    message: str
    metrics: list[Metric] = field(default_factory=list)


class SkipCheck(Exception):
    """Raise from a check to report `skip` with the message (e.g. the device lacks a feature)."""


@dataclass
class _DtypeStats:
    cases: int = 0
    failed: int = 0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    worst_ratio: float = 0.0


class Verdict:
    """Collects per-case comparisons of one check and turns them into one status and one sentence.

    The message names the first failing case (op, dtype, shape and element), since the first
    failure is usually the one a person should look at; counts and worst-case metrics cover the rest.
    """

    def __init__(self, subject: str):
        self.subject = subject
        self.stats: dict[str, _DtypeStats] = {}
        self.failures: list[str] = []
        self.warnings: list[str] = []
        self.extra_metrics: list[Metric] = []
        self.skipped: list[str] = []

    def compare(
        self,
        case: str,
        actual: torch.Tensor,
        golden: torch.Tensor,
        variant: DtypeVariant,
        op: str,
        reduction_length: int = 1,
        magnitude: torch.Tensor | None = None,
    ) -> Comparison:
        """Compare one result; `op` names the tolerance entry in data/tolerances/."""
        result = compare_to_golden(actual, golden, variant, tolerance(op), reduction_length, magnitude)
        stats = self.stats.setdefault(variant.name, _DtypeStats())
        stats.cases += 1
        stats.max_rel = max(stats.max_rel, result.max_rel_error)
        stats.max_ulp = max(stats.max_ulp, result.max_ulp_error)
        stats.worst_ratio = max(stats.worst_ratio, result.worst_ratio)
        if not result.ok:
            stats.failed += 1
            self.failures.append(f"{case} in {variant.name}: {result.describe_worst()}")
        return result

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def skip_case(self, message: str) -> None:
        self.skipped.append(message)

    def metric(self, name: str, value: float | None, unit: str = "", **kw: Any) -> None:
        self.extra_metrics.append(Metric(name=name, value=value, unit=unit, **kw))

    @property
    def cases(self) -> int:
        return sum(s.cases for s in self.stats.values())

    def metrics(self) -> list[Metric]:
        out: list[Metric] = []
        for dtype, s in self.stats.items():
            out += [
                Metric(name="cases", value=s.cases, unit="count", dtype=dtype),
                Metric(name="failed_cases", value=s.failed, unit="count", dtype=dtype, threshold=0),
                Metric(name="max_rel_error", value=s.max_rel, unit="ratio", dtype=dtype),
                Metric(name="max_ulp_error", value=s.max_ulp, unit="ulp", dtype=dtype),
                Metric(name="worst_error_to_tolerance", value=s.worst_ratio, unit="ratio", dtype=dtype,
                       threshold=1.0),
            ]
        return out + self.extra_metrics

    def outcome(self) -> CheckOutcome:
        metrics = self.metrics()
        if self.failures:
            more = f" ({len(self.failures) - 1} more failure(s))" if len(self.failures) > 1 else ""
            return CheckOutcome(Status.FAIL, f"{self.subject}: {self.failures[0]}{more}.", metrics)
        if self.warnings:
            return CheckOutcome(Status.WARN, f"{self.subject}: {self.warnings[0]}.", metrics)
        if not self.stats and not self.extra_metrics and self.skipped:
            return CheckOutcome(Status.SKIP, f"{self.subject}: {self.skipped[0]}.", metrics)
        dtypes = ", ".join(self.stats) or "all cases"
        worst = max((s.worst_ratio for s in self.stats.values()), default=0.0)
        detail = f" across {self.cases} cases in {dtypes} (worst error {worst:.2f} of tolerance)" \
            if self.stats else ""
        untested = f"; not tested: {'; '.join(self.skipped)}" if self.skipped else ""
        return CheckOutcome(Status.PASS, f"{self.subject} matches the float64 reference{detail}{untested}.",
                            metrics)


@dataclass
class CheckContext:
    """Everything a check needs: the device under test, the level, parameters and a seeded RNG."""

    device: torch.device
    level: str
    params: dict[str, Any]
    seed: int = 0
    on_progress: Callable[[int, int, str], None] | None = None
    # For distributed checks (interconnect.*): this rank's view of its group (interconnect.group.GroupView).
    group: Any = None
    _variants: list[DtypeVariant] | None = None

    def progress(self, done: int, total: int, what: str = "") -> None:
        """Tell the person watching how far a long check has got (shown next to the check in flight)."""
        if self.on_progress is not None:
            self.on_progress(done, total, what)

    def variants(self, include_tf32: bool = False) -> list[DtypeVariant]:
        """The floating dtypes to test on this device (TF32 only for matmul-like ops that use it)."""
        if self._variants is None:
            self._variants = supported_variants(self.device, include_tf32=True)
        return [v for v in self._variants if include_tf32 or not v.tf32]

    def generator(self, salt: int = 0) -> torch.Generator:
        """A CPU generator: inputs are drawn on the CPU so every device sees the same numbers."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + salt)

    def synchronize(self) -> None:
        synchronize(self.device)
