"""What the device says about itself while it burns: temperature, power, clocks, throttling, ECC errors.

Read through the vendor's management library where it is installed: NVML (nvidia-ml-py) for NVIDIA. For
devices without one here (the CPU, AMD without amdsmi, Ascend, Intel) the sampler is None and the reason is
said plainly in the report; the burn's own checks (exactness, drift, watchdog) do not depend on it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch

Sampler = Callable[[], dict[str, float]]

# NVML clock event ("throttle") reasons that mean the device was held back, by bit (nvml.h).
THROTTLE_REASONS = {
    0x0000000000000002: "application clocks setting",
    0x0000000000000004: "software power cap",
    0x0000000000000008: "hardware slowdown",
    0x0000000000000020: "software thermal slowdown",
    0x0000000000000040: "hardware thermal slowdown",
    0x0000000000000080: "hardware power brake",
}


def throttle_names(mask: int) -> list[str]:
    return [name for bit, name in THROTTLE_REASONS.items() if mask & bit]


def telemetry_for(device: torch.device) -> tuple[Sampler | None, str]:
    """A function that samples `device` now, or None and why there is none."""
    if device.type == "cpu":
        return None, "the CPU has no device telemetry to read"
    if device.type == "cuda" and getattr(torch.version, "hip", None) is None:
        return _nvml_sampler(device)
    if device.type == "cuda":
        return None, "AMD telemetry needs amdsmi, which this version does not read yet"
    return None, f"no telemetry reader for {device.type} devices yet"


def _nvml_sampler(device: torch.device) -> tuple[Sampler | None, str]:
    try:
        nvml = importlib.import_module("pynvml")
        nvml.nvmlInit()
    except Exception as exc:  # not installed, or no driver library
        return None, f"NVML is not available ({type(exc).__name__}: {exc}); `pip install nvidia-ml-py` to read it"
    try:
        props = torch.cuda.get_device_properties(device)
        bus_id = f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
        handle = nvml.nvmlDeviceGetHandleByPciBusId(bus_id.encode())
    except Exception as exc:
        return None, f"NVML does not know {device} ({type(exc).__name__}: {exc})"

    def read(name: str, fn: Callable[[], float]) -> dict[str, float]:
        try:
            return {name: float(fn())}
        except Exception:  # a reading this device or driver does not offer
            return {}

    def sample() -> dict[str, float]:
        values: dict[str, float] = {}
        values |= read("temperature_c", lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
        values |= read("power_w", lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000)
        values |= read("sm_clock_mhz", lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM))
        values |= read("throttle_mask", lambda: nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle))
        values |= read("ecc_uncorrected", lambda: nvml.nvmlDeviceGetTotalEccErrors(
            handle, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC))
        return values

    return sample, "NVML"
