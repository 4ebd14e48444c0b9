"""Which spec sheet a device is judged against, and how an efficiency becomes a status (shared by performance.*)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from acceldoctor.baseline.spec_sheets import SpecSheet, lookup
from acceldoctor.report.model import Metric, Status


def device_name(device: torch.device) -> str | None:
    """The marketing name of the device (what spec sheets are keyed by); None for the CPU or when unknown."""
    device = torch.device(device)
    try:
        if device.type == "cuda":
            return torch.cuda.get_device_properties(device).name
        if device.type == "xpu":
            return torch.xpu.get_device_properties(device).name
        if device.type == "npu":
            return torch.npu.get_device_name(device)  # type: ignore[attr-defined]  # torch_npu
    except (AttributeError, RuntimeError, AssertionError):
        return None
    return None


def spec_for(device: torch.device) -> SpecSheet | None:
    """The device's spec sheet (data/spec_sheets.yaml), or None for the CPU or an unknown model."""
    name = device_name(device)
    if name is None:
        return None
    return lookup(name)


def judge_efficiency(efficiency: float, warn_at: float, fail_at: float) -> Status:
    """fail below `fail_at`, warn below `warn_at`, else pass."""
    if efficiency < fail_at:
        return Status.FAIL
    if efficiency < warn_at:
        return Status.WARN
    return Status.PASS


@dataclass
class ThroughputVerdict:
    """What judging each dtype's TFLOP/s against the spec sheet found."""

    status: Status = Status.PASS
    problems: list[str] = field(default_factory=list)  # one phrase per dtype below par, e.g. "float16 reaches ..."
    judged: int = 0  # dtypes the spec sheet lists a peak for


def judge_throughput(spec: SpecSheet | None, figures: list[tuple[str, float, str]], warn_at: float, fail_at: float,
                     metrics: list[Metric], what: str = "efficiency") -> ThroughputVerdict:
    """For each (dtype, TFLOP/s, unit): add an `efficiency` metric when the spec sheet lists a peak for the dtype,
    and phrase each dtype below `warn_at` (warn) or `fail_at` (fail) of it."""
    verdict = ThroughputVerdict()
    if spec is None:
        return verdict
    for dtype, tflops, unit in figures:
        efficiency = spec.efficiency("tflops", dtype, tflops)
        if efficiency is None:
            continue
        verdict.judged += 1
        metrics.append(Metric(name="efficiency", value=efficiency, unit="ratio", dtype=dtype, threshold=warn_at))
        status = judge_efficiency(efficiency, warn_at, fail_at)
        if status is Status.PASS:
            continue
        limit = fail_at if status is Status.FAIL else warn_at
        verdict.problems.append(f"{dtype} reaches {tflops:.3g} {unit}, only {efficiency:.1%} {what} against the "
                                f"spec sheet's {spec.peak('tflops', dtype):g} (below {limit:.0%})")
        if status is Status.FAIL or verdict.status is Status.FAIL:
            verdict.status = Status.FAIL
        else:
            verdict.status = Status.WARN
    return verdict
