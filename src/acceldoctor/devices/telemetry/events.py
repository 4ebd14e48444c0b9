"""`stability.telemetry`: one device's telemetry over a burn, judged.

`fail` when the device reported a hardware error while it burned: an Xid or vendor error event, a new uncorrectable
memory (ECC) error, or a health other than OK. `warn` when heat or power held its clocks back in more than one
interval (one interval is a blip; a clock an administrator set is not a fault). `skip` when there was no telemetry,
with the reason. Else `pass`, with the hottest, the most power and the clock range seen.
"""

from __future__ import annotations

from typing import Any

from acceldoctor.checks.context import CheckOutcome
from acceldoctor.devices.telemetry.base import HEALTH_OK, HELD_BACK_BY_HEAT_OR_POWER
from acceldoctor.report.model import Metric, Status

CHECK = "stability.telemetry"


def _when(position: int, sample: dict[str, Any]) -> str:
    t_s = sample.get("t_s")
    return f"at {t_s:.0f} s" if isinstance(t_s, (int, float)) else f"in interval {position + 1}"


def _numbers(readings: list[tuple[int, dict]], key: str) -> list[float]:
    return [float(s[key]) for _, s in readings
            if isinstance(s.get(key), (int, float)) and not isinstance(s.get(key), bool)]


def _counter_increase(readings: list[tuple[int, dict]], key: str) -> tuple[int, str | None]:
    """How much a running counter rose over the run, and when it first rose. A counter that falls (the driver
    reloaded, the device was reset) starts over from its new value."""
    total, first, previous = 0, None, None
    for position, sample in readings:
        value = sample.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if previous is not None and value > previous:
            total += int(value - previous)
            first = first or _when(position, sample)
        previous = value
    return total, first


def _event_name(code: Any) -> str:
    return f"Xid {code}" if isinstance(code, int) else f"error code {code}"


def _problems(readings: list[tuple[int, dict]]) -> tuple[list[str], int, int, int]:
    """What counts as a hardware error, in words; and the counts of events, new uncorrectable and corrected errors."""
    problems: list[str] = []
    events = [(code, _when(position, sample)) for position, sample in readings for code in sample.get("xid") or []]
    if events:
        shown = ", ".join(f"{_event_name(code)} {when}" for code, when in events[:5])
        more = f" and {len(events) - 5} more" if len(events) > 5 else ""
        problems.append(f"device error event(s) {shown}{more}")
    uncorrected, first_uncorrected = _counter_increase(readings, "ecc_uncorrected")
    if uncorrected:
        problems.append(f"{uncorrected} new uncorrectable memory (ECC) error(s), the first {first_uncorrected}")
    unhealthy = next(((position, sample) for position, sample in readings
                      if sample.get("health") and str(sample["health"]).upper() != HEALTH_OK), None)
    if unhealthy is not None:
        position, sample = unhealthy
        problems.append(f"health \"{sample['health']}\" {_when(position, sample)}")
    corrected, _ = _counter_increase(readings, "ecc_corrected")
    return problems, len(events), uncorrected, corrected


def judge_telemetry(device: str, samples: list[dict | None], reason_if_none: str | None = None) -> CheckOutcome:
    """Judge the per-interval `telemetry` dicts of one device (TelemetrySample.as_dict() plus the interval's `t_s`;
    missing or empty where nothing was read). `reason_if_none` says why there is no telemetry, for the skip."""
    readings = [(position, sample) for position, sample in enumerate(samples)
                if sample and any(key != "t_s" for key in sample)]
    if not readings:
        reason = (reason_if_none or "no telemetry was read").rstrip(".")
        return CheckOutcome(Status.SKIP, f"{device}: no device telemetry to judge: {reason}.", [])

    temperatures, powers = _numbers(readings, "temperature_c"), _numbers(readings, "power_w")
    clocks = _numbers(readings, "clock_mhz")
    watched = [(position, sample) for position, sample in readings if isinstance(sample.get("throttle"), list)]
    held_back = [(position, sample, [r for r in sample["throttle"] if r in HELD_BACK_BY_HEAT_OR_POWER])
                 for position, sample in watched]
    held_back = [entry for entry in held_back if entry[2]]
    problems, events, uncorrected, corrected = _problems(readings)

    metrics = [Metric(name="error_events", value=events, unit="count", threshold=0),
               Metric(name="new_ecc_uncorrected", value=uncorrected, unit="count", threshold=0),
               Metric(name="new_ecc_corrected", value=corrected, unit="count")]
    if temperatures:
        metrics.append(Metric(name="max_temperature", value=max(temperatures), unit="C"))
    if powers:
        metrics.append(Metric(name="max_power", value=max(powers), unit="W"))
    if clocks:
        metrics += [Metric(name="min_clock", value=min(clocks), unit="MHz"),
                    Metric(name="max_clock", value=max(clocks), unit="MHz")]
    share = len(held_back) / len(watched) if watched else None
    if share is not None:
        metrics.append(Metric(name="throttled_share", value=share, unit="ratio"))

    if problems:
        return CheckOutcome(Status.FAIL, f"{device} reported hardware errors while it burned: {'; '.join(problems)}. "
                            "Take it out of service and read the kernel log (dmesg) and the vendor's error log.",
                            metrics)
    if len(held_back) > 1:
        reasons = sorted({reason for _, _, found in held_back for reason in found})
        position, sample, _ = held_back[0]
        return CheckOutcome(Status.WARN, f"{device} was held back by {', '.join(reasons)} in {len(held_back)} of "
                            f"{len(watched)} intervals ({share:.0%} of the run), first {_when(position, sample)}; "
                            "check its cooling, airflow and power limit.", metrics)
    seen = []
    if temperatures:
        seen.append(f"up to {max(temperatures):.0f} °C")
    if powers:
        seen.append(f"up to {max(powers):.0f} W")
    if clocks:
        seen.append(f"clock {min(clocks):.0f}-{max(clocks):.0f} MHz")
    detail = f" ({', '.join(seen)})" if seen else ""
    return CheckOutcome(Status.PASS, f"{device} reported no hardware errors and no lasting heat or power throttling "
                        f"in {len(readings)} readings{detail}.", metrics)
