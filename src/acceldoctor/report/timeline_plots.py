"""The stress timeline as charts: per device, throughput, temperature, power, clock and errors over time.

A sample is one interval of `acceldoctor stress` (see `Report.timeline`). Reports come from older versions and
from other machines, so every key may be missing or of the wrong type: what is not a number is not plotted, and a
quantity with no number at all gets no chart (a CPU has no telemetry: a note says so instead of an empty chart).
Intervals with wrong or NaN elements, a rise of the uncorrected ECC counter, error events (Xid), a health other
than OK, or throttling by heat or power are marked on every chart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from acceldoctor.devices.telemetry.base import HEALTH_OK, HELD_BACK_BY_HEAT_OR_POWER
from acceldoctor.report.svg_plots import Mark, Point, line_chart, plottable, step_chart

# telemetry key -> (chart title, unit, what the note calls it when missing, {other key drawn with it: its name})
TELEMETRY_CHARTS = {
    "temperature_c": ("Temperature", "°C", "temperature", {}),
    "power_w": ("Power", "W", "power", {"power_limit_w": "power limit"}),
    "clock_mhz": ("Clock", "MHz", "clock", {"memory_clock_mhz": "memory clock"}),
}
# Clock limits that are not the device being held back (devices/telemetry/base.py): an administrator's setting or a
# lifetime limit would otherwise mark a whole run as throttled.

GEMM_UNIT = "TFLOP/s"
MAX_LISTED_MARKS = 20  # the text list under the charts; the charts show them all


@dataclass
class Chart:
    quantity: str  # "throughput:TFLOP/s", "temperature_c", "errors"...: for tests and page anchors
    svg: Markup


@dataclass
class DeviceTimeline:
    device: str
    samples: int
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be plotted, in plain words
    marked: list[str] = field(default_factory=list)  # the marked intervals, in plain words


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _x_axis(samples: list[dict[str, Any]]) -> tuple[list[float], str]:
    """Seconds since the start when every sample has them, else the interval's number (never a mix of both)."""
    times = [plottable(s.get("t_s")) for s in samples]
    if times and all(t is not None for t in times):
        return [t for t in times if t is not None], "time since start (s)"
    return [float(i + 1) for i in range(len(samples))], "interval"


def _throughput_charts(samples: list[dict[str, Any]], xs: list[float], x_label: str,
                       marks: list[Mark]) -> list[Chart]:
    # Workloads grouped by unit: rates in one unit share a chart (TFLOP/s for the GEMMs, GB/s, steps/s...).
    pairs: dict[tuple[str, str], None] = {}
    for sample in samples:
        for name, workload in _dict(sample.get("workloads")).items():
            workload = _dict(workload)
            if plottable(workload.get("rate")) is not None:
                pairs[(str(workload.get("unit") or ""), str(name))] = None
    by_unit: dict[str, dict[str, list[Point]]] = {}
    for unit, name in pairs:
        points = []
        for x, sample in zip(xs, samples, strict=True):
            workload = _dict(_dict(sample.get("workloads")).get(name))
            same_unit = str(workload.get("unit") or "") == unit
            points.append((x, plottable(workload.get("rate")) if same_unit else None))
        by_unit.setdefault(unit, {})[name] = points
    # Older reports have only the top-level float32 GEMM figure; newer ones repeat it as a workload.
    if GEMM_UNIT not in by_unit and any(plottable(s.get("tflops")) is not None for s in samples):
        by_unit[GEMM_UNIT] = {"float32 GEMM": [(x, plottable(s.get("tflops")))
                                               for x, s in zip(xs, samples, strict=True)]}
    charts = []
    for unit in sorted(by_unit, key=lambda u: (u != GEMM_UNIT, u)):
        title = f"Throughput ({unit})" if unit else "Throughput"
        charts.append(Chart(f"throughput:{unit}", line_chart(by_unit[unit], title=title, x_label=x_label,
                                                             y_label=unit or "rate", include_zero=True,
                                                             marks=marks)))
    return charts


def _telemetry_charts(samples: list[dict[str, Any]], xs: list[float], x_label: str,
                      marks: list[Mark]) -> tuple[list[Chart], list[str]]:
    readings = [_dict(s.get("telemetry")) for s in samples]
    if not any(readings):
        return [], ["no telemetry on this device (temperature, power and clock are not plotted)"]
    charts, notes = [], []
    for key, (title, unit, what, companions) in TELEMETRY_CHARTS.items():
        points = [(x, plottable(r.get(key))) for x, r in zip(xs, readings, strict=True)]
        if all(y is None for _, y in points):
            notes.append(f"this device reports no {what}")
            continue
        series = {what: points}
        for other, name in companions.items():
            other_points = [(x, plottable(r.get(other))) for x, r in zip(xs, readings, strict=True)]
            if any(y is not None for _, y in other_points):
                series[name] = other_points
        charts.append(Chart(key, line_chart(series, title=f"{title} ({unit})", x_label=x_label, y_label=unit,
                                            marks=marks)))
    return charts, notes


def _error_chart(samples: list[dict[str, Any]], xs: list[float], x_label: str, marks: list[Mark]) -> list[Chart]:
    keys = {"wrong_elements": "wrong elements", "nan_elements": "NaN elements"}
    if not any(plottable(s.get(key)) is not None for s in samples for key in keys):
        return []
    series: dict[str, list[Point]] = {}
    for key, name in keys.items():
        total, points = 0.0, []
        for x, sample in zip(xs, samples, strict=True):
            total += plottable(sample.get(key)) or 0.0  # a missing count adds nothing it could prove
            points.append((x, total))
        series[name] = points
    return [Chart("errors", step_chart(series, title="Errors (cumulative)", x_label=x_label,
                                       y_label="elements", marks=marks))]


def _interval_marks(samples: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    """(kind, sample index, what happened) for each interval worth pointing at."""
    found = []
    ecc_before: float | None = None  # the counter at the first reading: errors from before the run are not news
    for i, sample in enumerate(samples):
        telemetry = _dict(sample.get("telemetry"))
        wrong, nan = plottable(sample.get("wrong_elements")) or 0, plottable(sample.get("nan_elements")) or 0
        ecc = plottable(telemetry.get("ecc_uncorrected"))
        problems = []
        if wrong or nan:
            problems.append(f"{wrong:g} wrong and {nan:g} NaN elements")
        if ecc is not None and ecc_before is not None and ecc > ecc_before:
            problems.append(f"uncorrected ECC errors rose to {ecc:g}")
        if ecc is not None:
            ecc_before = ecc
        events = telemetry.get("xid")
        if events:
            problems.append("error events " + ", ".join(str(e) for e in (events if isinstance(events, list)
                                                                           else [events])))
        health = telemetry.get("health")
        if health and str(health).upper() != HEALTH_OK:  # as stability.telemetry judges it
            problems.append(f"health: {health}")
        if problems:
            found.append(("error", i, "; ".join(problems)))
        throttle = telemetry.get("throttle")
        reasons = [str(r) for r in (throttle if isinstance(throttle, list) else [throttle]) if r]
        reasons = [r for r in reasons if r in HELD_BACK_BY_HEAT_OR_POWER]  # as stability.telemetry judges it
        if reasons:
            found.append(("throttle", i, "throttled: " + ", ".join(reasons)))
    return found


@dataclass
class _Run:
    kind: str
    first: int  # sample indices
    last: int
    notes: list[str]
    count: int = 1


def _marks(found: list[tuple[str, int, str]], xs: list[float], where: Callable[[float], str]) -> list[Mark]:
    """One band per stretch of marked intervals of one kind: an hour of throttling is one band, not 3600 lines.

    Intervals closer than about a pixel of the chart (1/500 of the time shown) join the same band, so a device
    that flaps in and out of throttling every second still gives a page of sensible size.
    """
    near = (max(xs) - min(xs)) / 500
    runs: list[_Run] = []
    open_runs: dict[str, _Run] = {}
    for kind, i, note in found:
        run = open_runs.get(kind)
        if run is not None and (i == run.last + 1 or xs[i] - xs[run.last] <= near):
            run.last, run.count = i, run.count + 1
            if note not in run.notes:
                run.notes.append(note)
            continue
        open_runs[kind] = _Run(kind, i, i, [note])
        runs.append(open_runs[kind])
    marks = []
    for run in runs:
        said = "; ".join(run.notes[:3]) + ("; …" if len(run.notes) > 3 else "")
        if run.first == run.last:
            marks.append(Mark(xs[run.first], run.kind, f"at {where(xs[run.first])}: {said}"))
        else:
            marks.append(Mark(xs[run.first], run.kind, f"from {where(xs[run.first])} to {where(xs[run.last])}, "
                              f"{run.count} intervals: {said}", until=xs[run.last]))
    return marks


def device_timeline(device: str, samples: list[Any]) -> DeviceTimeline:
    samples = [s for s in samples if isinstance(s, dict)]
    view = DeviceTimeline(device=device, samples=len(samples))
    if not samples:
        view.notes.append("no sample was recorded for this device")
        return view
    xs, x_label = _x_axis(samples)
    if x_label == "interval":
        view.notes.append("samples lack their time (t_s): plotted against the interval's number")
        marks = _marks(_interval_marks(samples), xs, lambda x: f"interval {x:g}")
    else:
        marks = _marks(_interval_marks(samples), xs, lambda x: f"{x:g} s")
    view.charts += _throughput_charts(samples, xs, x_label, marks)
    telemetry_charts, notes = _telemetry_charts(samples, xs, x_label, marks)
    view.charts += telemetry_charts
    view.charts += _error_chart(samples, xs, x_label, marks)
    view.notes += notes
    if not view.charts:
        view.notes.append("the samples hold nothing to plot")
    view.marked = [mark.note for mark in marks[:MAX_LISTED_MARKS]]
    if len(marks) > MAX_LISTED_MARKS:
        view.marked.append(f"and {len(marks) - MAX_LISTED_MARKS} more (marked on the charts)")
    return view


def timeline_views(timeline: dict[str, list[Any]] | None) -> list[DeviceTimeline] | None:
    """One view per device of the report's timeline; None when the report has no timeline (not a stress run)."""
    if timeline is None:
        return None
    return [device_timeline(device, samples if isinstance(samples, list) else [])
            for device, samples in timeline.items()]
