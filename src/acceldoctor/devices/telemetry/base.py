"""What one telemetry reading holds (TelemetrySample) and what every vendor's reader offers (TelemetrySource).

A burn-in watches a device for hours; its telemetry explains what the throughput alone cannot (a device that slows
down because it is hot, an uncorrectable memory error, an Xid). Readers are best effort: a reading the device does not
offer, or one that fails this time, is simply absent from the sample, so telemetry can never stop a burn.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# Throttle (clock event) reasons in plain words, shared by every reader so that one judge reads them all.
APPLICATIONS_CLOCKS_SETTING = "applications clocks setting"  # clocks held where an administrator set them
SOFTWARE_POWER_CAP = "software power cap"
HARDWARE_SLOWDOWN = "hardware slowdown"
SOFTWARE_THERMAL_SLOWDOWN = "software thermal slowdown"
HARDWARE_THERMAL_SLOWDOWN = "hardware thermal slowdown"
HARDWARE_POWER_BRAKE = "hardware power brake"
# AMD's firmware names its limits differently; these are the same causes in its terms.
POWER_CAP = "power cap"
CURRENT_LIMIT = "current limit"
THERMAL_SLOWDOWN = "thermal slowdown"
MEMORY_THERMAL_SLOWDOWN = "memory thermal slowdown"
VOLTAGE_REGULATOR_HOT = "voltage regulator hot"
RELIABILITY_LIMIT = "reliability limit"

# The reasons that mean the device was held back by heat or power (cooling, power delivery, a power cap): worth a
# warning after a burn. A clock setting an administrator chose, or a reliability (lifetime) limit, is not a fault.
HELD_BACK_BY_HEAT_OR_POWER = frozenset({
    SOFTWARE_POWER_CAP, HARDWARE_SLOWDOWN, SOFTWARE_THERMAL_SLOWDOWN, HARDWARE_THERMAL_SLOWDOWN, HARDWARE_POWER_BRAKE,
    POWER_CAP, CURRENT_LIMIT, THERMAL_SLOWDOWN, MEMORY_THERMAL_SLOWDOWN, VOLTAGE_REGULATOR_HOT,
})

HEALTH_OK = "OK"


@dataclass
class TelemetrySample:
    """One reading of one device. None means "not offered or not readable this time", never zero."""

    temperature_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    clock_mhz: float | None = None  # the compute clock (NVIDIA SM, AMD GFX, Ascend AI Core)
    memory_clock_mhz: float | None = None
    # Reasons active now; [] when the device reports none, None when it cannot tell.
    throttle: list[str] | None = None
    # Running counters as the device reports them (since driver load); the judge looks at their increase.
    ecc_corrected: int | None = None
    ecc_uncorrected: int | None = None
    # Xid / vendor error event codes seen since the previous read; [] when watched and none came, None when unwatched.
    xid: list[int | str] | None = None
    health: str | None = None  # "OK" or the vendor's own word for what is wrong

    def as_dict(self) -> dict[str, Any]:
        """The readings the device offered, for the report's timeline (`sample["telemetry"]`)."""
        return {key: value for key, value in asdict(self).items() if value is not None}


class TelemetrySource(ABC):
    """A reader for one device. `read()` never raises; `close()` may be called more than once."""

    name: str = ""

    @abstractmethod
    def read(self) -> TelemetrySample:
        """The device's readings now."""

    def close(self) -> None:  # noqa: B027 - most readers hold nothing to release
        """Release the vendor library or event subscriptions."""

    def __enter__(self) -> TelemetrySource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def reading(call: Callable[[], T]) -> T | None:
    """`call()`, or None when it fails: not supported, not permitted, a driver hiccup. A missing reading is absent,
    it must never stop the burn it describes."""
    try:
        return call()
    except Exception:
        return None


def why(exc: BaseException) -> str:
    """A short account of an error for a one-sentence reason."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text or type(exc).__name__
