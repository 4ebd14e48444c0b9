"""NVIDIA telemetry through NVML (the `pynvml` module of the optional nvidia-ml-py package).

NVML talks to the driver, not to CUDA, so a watching process can read a GPU that another process is burning without
creating a CUDA context of its own.
"""

from __future__ import annotations

import os
from typing import Any

from acceldoctor.devices.telemetry.base import (
    APPLICATIONS_CLOCKS_SETTING,
    HARDWARE_POWER_BRAKE,
    HARDWARE_SLOWDOWN,
    HARDWARE_THERMAL_SLOWDOWN,
    SOFTWARE_POWER_CAP,
    SOFTWARE_THERMAL_SLOWDOWN,
    TelemetrySample,
    TelemetrySource,
    reading,
    why,
)

# nvml.h nvmlClocksEventReason* bits. Left out: 0x1 GPU idle (nothing to run is no limit on a burn), 0x10 sync boost
# (clocks matched to other GPUs of a group) and 0x100 display clock setting.
CLOCK_EVENT_REASONS = {
    0x2: APPLICATIONS_CLOCKS_SETTING,
    0x4: SOFTWARE_POWER_CAP,
    0x8: HARDWARE_SLOWDOWN,
    0x20: SOFTWARE_THERMAL_SLOWDOWN,
    0x40: HARDWARE_THERMAL_SLOWDOWN,
    0x80: HARDWARE_POWER_BRAKE,
}

# nvml.h values, used when a pynvml lacks the name (they are part of NVML's stable ABI).
NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0  # since the driver loaded: the counter a burn's errors land in
NVML_EVENT_TYPE_XID_CRITICAL_ERROR = 0x8
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_GPU_IS_LOST = 15
# Events drained per read at most, so a storm of Xids cannot keep the reader from returning.
MAX_EVENTS_PER_READ = 256


def throttle_names(mask: int) -> list[str]:
    """The plain names of the reasons set in an NVML clocks event reasons mask."""
    return [name for bit, name in CLOCK_EVENT_REASONS.items() if mask & bit]


def _constant(nvml: Any, name: str, default: int) -> int:
    return getattr(nvml, name, default)


def _watts(milliwatts: float | None) -> float | None:
    return None if milliwatts is None else milliwatts / 1000.0


class NvmlTelemetry(TelemetrySource):
    """One GPU's readings through NVML, and the Xid events it raised since the previous read."""

    name = "NVML"

    def __init__(self, nvml: Any, handle: Any):
        self._nvml = nvml
        self._handle = handle
        self._lost = False
        self._closed = False
        self._events = self._watch_xid()

    def _watch_xid(self) -> Any:
        """An event set registered for Xid critical errors, or None where the driver or the user may not have one."""
        nvml = self._nvml
        event_set = reading(nvml.nvmlEventSetCreate)
        if event_set is None:
            return None
        kind = _constant(nvml, "nvmlEventTypeXidCriticalError", NVML_EVENT_TYPE_XID_CRITICAL_ERROR)
        try:
            nvml.nvmlDeviceRegisterEvents(self._handle, kind, event_set)
        except Exception:  # not supported on this GPU or driver, or not permitted: the other readings still come
            reading(lambda: nvml.nvmlEventSetFree(event_set))
            return None
        return event_set

    def _get(self, call: Any) -> Any:
        """`call()` or None; remembers a GPU that fell off the bus, which every NVML call then reports."""
        try:
            return call()
        except Exception as exc:
            if getattr(exc, "value", None) == NVML_ERROR_GPU_IS_LOST:
                self._lost = True
            return None

    def _new_xids(self) -> list[int] | None:
        if self._events is None:
            return None
        xids: list[int] = []
        for _ in range(MAX_EVENTS_PER_READ):
            try:
                # A zero timeout returns at once: NVML_ERROR_TIMEOUT means no event is pending.
                event = self._nvml.nvmlEventSetWait(self._events, 0)
            except Exception as exc:
                if getattr(exc, "value", None) == NVML_ERROR_GPU_IS_LOST:
                    self._lost = True
                break
            data = getattr(event, "eventData", None)
            if data is not None:
                xids.append(int(data))
        return xids

    def _throttle(self) -> list[str] | None:
        # nvmlDeviceGetCurrentClocksEventReasons replaced ...ThrottleReasons (driver 535); older pynvml and drivers
        # have only the old name, newer ones may drop it.
        for name in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
            call = getattr(self._nvml, name, None)
            mask = self._get(lambda call=call: call(self._handle)) if call is not None else None
            if mask is not None:
                return throttle_names(int(mask))
        return None

    def _ecc(self, error_type: int) -> int | None:
        count = self._get(lambda: self._nvml.nvmlDeviceGetTotalEccErrors(
            self._handle, error_type, _constant(self._nvml, "NVML_VOLATILE_ECC", NVML_VOLATILE_ECC)))
        return None if count is None else int(count)

    def read(self) -> TelemetrySample:
        nvml, handle = self._nvml, self._handle
        sample = TelemetrySample(
            temperature_c=self._get(lambda: nvml.nvmlDeviceGetTemperature(
                handle, _constant(nvml, "NVML_TEMPERATURE_GPU", NVML_TEMPERATURE_GPU))),
            power_w=_watts(self._get(lambda: nvml.nvmlDeviceGetPowerUsage(handle))),
            power_limit_w=_watts(self._get(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))),
            clock_mhz=self._get(lambda: nvml.nvmlDeviceGetClockInfo(
                handle, _constant(nvml, "NVML_CLOCK_SM", NVML_CLOCK_SM))),
            memory_clock_mhz=self._get(lambda: nvml.nvmlDeviceGetClockInfo(
                handle, _constant(nvml, "NVML_CLOCK_MEM", NVML_CLOCK_MEM))),
            throttle=self._throttle(),
            ecc_corrected=self._ecc(_constant(nvml, "NVML_MEMORY_ERROR_TYPE_CORRECTED",
                                              NVML_MEMORY_ERROR_TYPE_CORRECTED)),
            ecc_uncorrected=self._ecc(_constant(nvml, "NVML_MEMORY_ERROR_TYPE_UNCORRECTED",
                                                NVML_MEMORY_ERROR_TYPE_UNCORRECTED)),
            xid=self._new_xids(),
        )
        if self._lost:  # the classic Xid 79: the driver can no longer reach the GPU
            sample.health = "GPU is lost (fell off the bus)"
        return sample

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._events is not None:
            reading(lambda: self._nvml.nvmlEventSetFree(self._events))
        reading(self._nvml.nvmlShutdown)


def _handle(nvml: Any, index: int, pci_bus_id: str | None) -> Any:
    """The NVML handle of CUDA device `index`: by PCI bus id when the device process told it (exact), else by index.

    CUDA numbers the GPUs it is shown (CUDA_VISIBLE_DEVICES) from 0, fastest first; NVML numbers all GPUs in PCI
    order. Mapping through CUDA_VISIBLE_DEVICES covers the common case; on a host that mixes GPU models without
    CUDA_DEVICE_ORDER=PCI_BUS_ID the index may still name another GPU, which is why the bus id is preferred.
    """
    if pci_bus_id:
        return nvml.nvmlDeviceGetHandleByPciBusId(pci_bus_id)
    visible = [entry.strip() for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    if index < len(visible):
        entry = visible[index]
        if entry.isdigit():
            return nvml.nvmlDeviceGetHandleByIndex(int(entry))
        return nvml.nvmlDeviceGetHandleByUUID(entry)  # GPU-... (a MIG-... slice has no readings of its own)
    return nvml.nvmlDeviceGetHandleByIndex(index)


def open_nvml(index: int, pci_bus_id: str | None = None) -> tuple[NvmlTelemetry | None, str]:
    """A reader for CUDA device `index`, or None and why not in one sentence."""
    try:
        import pynvml
    except ImportError:
        return None, "NVML is not available (the pynvml module is not installed); `pip install nvidia-ml-py` to read it"
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return None, f"NVML could not start ({why(exc)}); is the NVIDIA driver loaded?"
    try:
        handle = _handle(pynvml, index, pci_bus_id)
    except Exception as exc:
        reading(pynvml.nvmlShutdown)
        where = f"at PCI bus id {pci_bus_id}" if pci_bus_id else f"for cuda:{index}"
        return None, f"NVML found no GPU {where} ({why(exc)})"
    return NvmlTelemetry(pynvml, handle), "read through NVML"
