"""Which spec sheet a device is judged against, and how an efficiency becomes a status (shared by performance.*)."""

from __future__ import annotations

import torch

from acceldoctor.baseline.spec_sheets import SpecSheet, lookup
from acceldoctor.report.model import Status


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
