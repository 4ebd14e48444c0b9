"""AMD telemetry through the `amdsmi` Python package that comes with ROCm (an optional import).

amdsmi reads the driver (sysfs and the SMU firmware's metrics table), not HIP, so a watching process creates no HIP
context. Its Python API changed between ROCm releases (`cur_clk` became `clk`, HOTSPOT joined JUNCTION, values it
cannot read come back as "N/A"), so every reading below accepts the shapes seen across releases.
"""

from __future__ import annotations

from typing import Any

from acceldoctor.devices.telemetry.base import (
    CURRENT_LIMIT,
    HARDWARE_SLOWDOWN,
    MEMORY_THERMAL_SLOWDOWN,
    POWER_CAP,
    RELIABILITY_LIMIT,
    THERMAL_SLOWDOWN,
    VOLTAGE_REGULATOR_HOT,
    TelemetrySample,
    TelemetrySource,
    reading,
    why,
)

# The kernel's ASIC-independent throttler bits (SMU_THROTTLER_*_BIT in amdgpu_smu.h), as gpu metrics report them in
# `indep_throttle_status`: PPT0-3/SPL/FPPT/SPPT power limits, TDC/EDC/APCC current limits, TEMP_* sensors,
# VRHOT0-1, PROCHOT_CPU/GFX, PPM/FIT.
INDEPENDENT_THROTTLER_BITS = (
    (range(0, 8), POWER_CAP),
    (range(16, 24), CURRENT_LIMIT),
    (range(32, 44), THERMAL_SLOWDOWN),
    (range(44, 46), VOLTAGE_REGULATOR_HOT),
    (range(46, 48), HARDWARE_SLOWDOWN),
    (range(56, 58), RELIABILITY_LIMIT),
)

# amdsmi_get_violation_status (MI300 and later, whose gpu metrics carry no throttle mask): limits active now.
VIOLATION_FLAGS = {
    "active_ppt_pwr": POWER_CAP,
    "active_socket_thrm": THERMAL_SLOWDOWN,
    "active_hbm_thrm": MEMORY_THERMAL_SLOWDOWN,
    "active_vr_thrm": VOLTAGE_REGULATOR_HOT,
    "active_prochot_thrm": HARDWARE_SLOWDOWN,
}

# "Not available" as the C library marks it in a field of a struct (all bits set).
_UNSET = {0xFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF}


def number(value: Any) -> float | None:
    """A reading as a number, or None for amdsmi's "N/A" strings and all-bits-set markers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value in _UNSET or value < 0:
        return None
    return float(value)


def throttle_from_mask(mask: int) -> list[str]:
    """Plain names of the limits set in an `indep_throttle_status` mask, each once."""
    names: list[str] = []
    for bits, name in INDEPENDENT_THROTTLER_BITS:
        if any(mask >> bit & 1 for bit in bits) and name not in names:
            names.append(name)
    return names


def amd_bdf(pci_bus_id: str) -> str:
    """torch's "%08x:%02x:%02x.0" as amdsmi parses a BDF ("%04x:%02x:%02x.%x")."""
    try:
        domain, bus, rest = pci_bus_id.split(":")
        device, function = rest.split(".")
        domain_value = int(domain, 16)
    except ValueError:
        return pci_bus_id
    if domain_value > 0xFFFF:  # a domain that needs all eight digits is passed on as it is
        return pci_bus_id.lower()
    return f"{domain_value:04x}:{int(bus, 16):02x}:{int(device, 16):02x}.{int(function, 16):x}"


class AmdSmiTelemetry(TelemetrySource):
    """One AMD GPU's readings through amdsmi."""

    name = "amdsmi"

    def __init__(self, smi: Any, handle: Any):
        self._smi = smi
        self._handle = handle
        self._closed = False

    def _temperature(self) -> float | None:
        smi = self._smi
        kinds = getattr(smi, "AmdSmiTemperatureType", None)
        current = getattr(getattr(smi, "AmdSmiTemperatureMetric", None), "CURRENT", None)
        # The hottest spot on the die first (what the firmware throttles on); the edge sensor where there is no other.
        for name in ("HOTSPOT", "JUNCTION", "EDGE"):
            kind = getattr(kinds, name, None)
            if kind is None:
                continue
            value = number(reading(lambda kind=kind: smi.amdsmi_get_temp_metric(self._handle, kind, current)))
            if value is not None:
                return value / 1000.0 if value > 1000 else value  # rocm-smi's millidegrees, should a build pass them on
        return None

    def _power(self) -> tuple[float | None, float | None]:
        info = reading(lambda: self._smi.amdsmi_get_power_info(self._handle)) or {}
        # Average socket power on MI200 and earlier, current socket power on MI300 and later: whichever is offered.
        power = next((value for key in ("average_socket_power", "current_socket_power", "socket_power")
                      if (value := number(info.get(key))) is not None), None)
        cap = reading(lambda: self._smi.amdsmi_get_power_cap_info(self._handle)) or {}
        limit = number(cap.get("power_cap"))
        if limit is not None and limit > 100_000:  # microwatts: no accelerator's cap is 100 kW
            limit /= 1_000_000
        return power, limit

    def _clock(self, kind_name: str) -> float | None:
        kind = getattr(getattr(self._smi, "AmdSmiClkType", None), kind_name, None)
        if kind is None:
            return None
        info = reading(lambda: self._smi.amdsmi_get_clock_info(self._handle, kind)) or {}
        return number(info.get("clk", info.get("cur_clk")))

    def _ecc(self) -> tuple[int | None, int | None]:
        counts = reading(lambda: self._smi.amdsmi_get_gpu_total_ecc_count(self._handle)) or {}
        corrected, uncorrected = number(counts.get("correctable_count")), number(counts.get("uncorrectable_count"))
        return (None if corrected is None else int(corrected)), (None if uncorrected is None else int(uncorrected))

    def _throttle(self) -> list[str] | None:
        metrics = reading(lambda: self._smi.amdsmi_get_gpu_metrics_info(self._handle)) or {}
        mask = metrics.get("indep_throttle_status")
        if isinstance(mask, int) and not isinstance(mask, bool) and mask not in _UNSET:
            return throttle_from_mask(mask)
        violation = reading(lambda: self._smi.amdsmi_get_violation_status(self._handle)) or {}
        flags = {name: violation.get(key) for key, name in VIOLATION_FLAGS.items()}
        if not any(isinstance(value, (bool, int)) for value in flags.values()):
            return None
        return [name for name, value in flags.items() if value is True or (isinstance(value, int) and value == 1)]

    def read(self) -> TelemetrySample:
        power, limit = self._power()
        corrected, uncorrected = self._ecc()
        return TelemetrySample(
            temperature_c=self._temperature(),
            power_w=power,
            power_limit_w=limit,
            clock_mhz=self._clock("GFX"),
            memory_clock_mhz=self._clock("MEM"),
            throttle=self._throttle(),
            ecc_corrected=corrected,
            ecc_uncorrected=uncorrected,
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            reading(self._smi.amdsmi_shut_down)


def open_amdsmi(index: int, pci_bus_id: str | None = None) -> tuple[AmdSmiTelemetry | None, str]:
    """A reader for HIP device `index`, or None and why not in one sentence.

    Without the PCI bus id the index is taken in amdsmi's own order, which need not be HIP's (HIP_VISIBLE_DEVICES,
    or a board whose GPUs HIP ranks differently): the device process should pass the bus id.
    """
    try:
        import amdsmi
    except ImportError:
        return None, ("amdsmi is not available (its Python package is not installed); install the one of your ROCm "
                      "release (`pip install /opt/rocm/share/amd_smi`) to read it")
    try:
        amdsmi.amdsmi_init()
    except Exception as exc:
        return None, f"amdsmi could not start ({why(exc)}); is the amdgpu driver loaded?"
    try:
        if pci_bus_id:
            handle = amdsmi.amdsmi_get_processor_handle_from_bdf(amd_bdf(pci_bus_id))
        else:
            handle = amdsmi.amdsmi_get_processor_handles()[index]
    except Exception as exc:
        reading(amdsmi.amdsmi_shut_down)
        where = f"at PCI address {pci_bus_id}" if pci_bus_id else f"for cuda:{index}"
        return None, f"amdsmi found no GPU {where} ({why(exc)})"
    return AmdSmiTelemetry(amdsmi, handle), "read through amdsmi"
