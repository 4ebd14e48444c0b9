"""Baselines: what this fleet measured when it was healthy, and judging a new result against it.

`build_baseline(reports)` keeps, for every (check, device model, metric, dtype), the median and the median
absolute deviation (MAD, unscaled) of the values across every report given (repeats and nodes alike), so one
slow node or one noisy repeat moves the baseline little. Only rates (higher is better) and times (lower is
better) are kept; spreads, ratios and counts are not baselined.

`judge_against_baseline(result, device_name, baseline, rules)` compares each metric that has a baseline entry:
a drop beyond `warn_drop` warns, beyond `fail_drop` fails. A metric that was noisy while the baseline was taken
gets wider limits: never narrower than `noise_multiple` robust standard deviations (1.4826 x MAD) of its
baseline values, so that noise the baseline itself showed is not reported as a regression. The thresholds are
data: data/baseline_rules.yaml.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from acceldoctor.baseline.rules import BaselineDataError, BaselineRules, Thresholds
from acceldoctor.datafiles import validate_document
from acceldoctor.report.model import Report, Result, Status

BASELINE_SCHEMA = "acceldoctor.baseline/1"

HIGHER_IS_BETTER_UNITS = frozenset({"TFLOP/s", "TOP/s", "GB/s", "tokens/s"})
LOWER_IS_BETTER_UNITS = frozenset({"us", "ms", "s"})

# MAD x this estimates the standard deviation of normally distributed values.
MAD_TO_SIGMA = 1.4826

# Results whose figures are measurements worth keeping: a skipped, errored, hung or crashed check measured nothing
# reliable.
_MEASURED_STATUSES = frozenset({Status.PASS, Status.WARN, Status.FAIL})

Direction = Literal["higher", "lower"]


def direction_for(unit: str) -> Direction | None:
    """"higher" for a rate, "lower" for a time, None for anything not baselined."""
    if unit in HIGHER_IS_BETTER_UNITS:
        return "higher"
    if unit in LOWER_IS_BETTER_UNITS:
        return "lower"
    return None


class BaselineEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    check: str = Field(min_length=1)
    device_kind: str = Field(min_length=1, description="The device name in the report, e.g. 'NVIDIA H100 80GB HBM3'.")
    metric: str = Field(min_length=1)
    dtype: str | None = None
    median: float
    mad: float = Field(ge=0, description="Median absolute deviation (unscaled) of the values.")
    n: int = Field(ge=1, description="How many values the median is taken over.")
    unit: str
    direction: Direction

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        return (self.check, self.device_kind, self.metric, self.dtype)


class SoftwareVersions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    torch: str | None = None
    stack: dict[str, str] = Field(default_factory=dict)


class Baseline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: Literal["acceldoctor.baseline/1"] = Field(BASELINE_SCHEMA, alias="schema")
    created_at: str
    run_ids: list[str] = Field(min_length=1, description="The run_id of every report the baseline is built from.")
    device_models: list[str] = Field(default_factory=list, description="Every device name seen in those reports.")
    software: list[SoftwareVersions] = Field(
        default_factory=list, description="Every distinct host software set (torch, vendor stack) in those reports.")
    metrics: list[BaselineEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_keys(self) -> Baseline:
        seen: set[tuple] = set()
        for entry in self.metrics:
            if entry.key in seen:
                raise ValueError(f"metric {entry.key} is listed twice")
            seen.add(entry.key)
        return self

    def entry(self, check: str, device_kind: str, metric: str, dtype: str | None) -> BaselineEntry | None:
        for candidate in self.metrics:
            if candidate.key == (check, device_kind, metric, dtype):
                return candidate
        return None

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


def _device_names(report: Report) -> dict[str, str]:
    return {d.id: d.name for d in report.devices}


def build_baseline(reports: Iterable[Report]) -> Baseline:
    """Median and MAD of every rate/time metric across all reports. Raises ValueError when nothing is baselinable."""
    reports = list(reports)
    if not reports:
        raise ValueError("no report to build a baseline from")
    values: dict[tuple[str, str, str, str | None], list[float]] = {}
    units: dict[tuple[str, str, str, str | None], str] = {}
    models: list[str] = []
    software: list[SoftwareVersions] = []
    for report in reports:
        names = _device_names(report)
        for device in report.devices:
            if device.name not in models:
                models.append(device.name)
        versions = SoftwareVersions(torch=report.host.torch, stack=dict(report.host.stack))
        if versions not in software:
            software.append(versions)
        for result in report.results:
            if result.status not in _MEASURED_STATUSES:
                continue
            kind = names.get(result.device, result.device)
            for metric in result.metrics:
                if direction_for(metric.unit) is None or metric.value is None or not math.isfinite(metric.value):
                    continue
                key = (result.check, kind, metric.name, metric.dtype)
                if key in units and units[key] != metric.unit:
                    raise ValueError(f"{result.check} {metric.name} is in {units[key]} in one report "
                                     f"and in {metric.unit} in another")
                units[key] = metric.unit
                values.setdefault(key, []).append(float(metric.value))
    if not values:
        raise ValueError("the reports hold no rate or time metric to baseline (run the performance checks)")
    entries = []
    for key, vals in values.items():
        median = statistics.median(vals)
        mad = statistics.median(abs(v - median) for v in vals)
        check, kind, name, dtype = key
        entries.append(BaselineEntry(check=check, device_kind=kind, metric=name, dtype=dtype, median=median,
                                     mad=mad, n=len(vals), unit=units[key], direction=direction_for(units[key])))
    return Baseline(created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    run_ids=[r.run_id for r in reports], device_models=models, software=software, metrics=entries)


def _read_json(path: Path, what: str) -> object:
    path = Path(path)
    if not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist"
        raise BaselineDataError(f"{what} {path} {problem}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineDataError(f"{what} {path} is not JSON: {exc}") from exc
    except OSError as exc:
        raise BaselineDataError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _load_document(path: Path, what: str, schema: str, model: type[BaseModel], not_it: str, hint: str = "") -> Any:
    """Read `path` as JSON, check its `schema` field, validate it as `model`; one-line errors throughout."""
    return validate_document(_read_json(path, what), f"{what} {path}", model, BaselineDataError, schema, not_it, hint)


def load_baseline(path: Path) -> Baseline:
    return _load_document(path, "baseline", BASELINE_SCHEMA, Baseline, "a baseline",
                          " (make one with `acceldoctor baseline create`)")


def load_report(path: Path) -> Report:
    from acceldoctor.report.model import REPORT_SCHEMA

    return _load_document(path, "report", REPORT_SCHEMA, Report, "an acceldoctor report")


# --- judging ------------------------------------------------------------------------------------------------------

_SEVERITY = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _percent(share: float) -> str:
    return f"{round(share * 100, 1):g}%"


def worsening(direction: Direction, value: float, reference: float) -> float:
    """How much worse `value` is than `reference`, as a share of it: positive when worse, negative when better."""
    change = (value - reference) / reference
    return -change if direction == "higher" else change


def regression_verdict(entry: BaselineEntry, value: float, limits: Thresholds,
                       noise_multiple: float) -> tuple[Status, str] | None:
    """(warn or fail, one sentence) when `value` is worse than the baseline beyond the limits; None otherwise.

    The limits widen to `noise_multiple` robust standard deviations of the baseline values when those were noisier.
    """
    if entry.median == 0:
        return None
    drop = worsening(entry.direction, value, entry.median)
    noise = noise_multiple * MAD_TO_SIGMA * entry.mad / abs(entry.median)
    fail_at, warn_at = max(limits.fail_drop, noise), max(limits.warn_drop, noise)
    if drop > fail_at:
        status, limit, rule = Status.FAIL, fail_at, limits.fail_drop
    elif drop > warn_at:
        status, limit, rule = Status.WARN, warn_at, limits.warn_drop
    else:
        return None
    what = f"{entry.metric} ({entry.dtype})" if entry.dtype else entry.metric
    unit = f" {entry.unit}" if entry.unit else ""
    percent = f"{round((value - entry.median) / entry.median * 100, 1):+g}%"
    why = f" (widened from {_percent(rule)} by the metric's noise in the baseline)" if limit > rule else ""
    return status, (f"{what} measured {_fmt(value)}{unit} against a baseline of {_fmt(entry.median)}{unit} "
                    f"({percent}), worse than the {_percent(limit)} {status.value} limit for a regression{why}.")


def judge_against_baseline(result: Result, device_name: str, baseline: Baseline, rules: BaselineRules) -> Result:
    """A copy of `result` with each baselined metric's `baseline` filled, and status/message raised on a regression.

    A metric without a baseline entry is left alone. The status only ever gets worse (pass -> warn -> fail); a
    result that is already a fail, error, skip, timeout or crash keeps its status and message.
    """
    judged = result.model_copy(deep=True)
    worst: tuple[tuple[int, float], Status, str] | None = None
    for metric in judged.metrics:
        entry = baseline.entry(result.check, device_name, metric.name, metric.dtype)
        if entry is None or metric.value is None or not math.isfinite(metric.value):
            continue
        metric.baseline = entry.median
        if entry.median == 0:
            continue
        drop = worsening(entry.direction, metric.value, entry.median)
        limits = rules.for_metric(result.check, metric.name, device_type=result.device.split(":")[0])
        verdict = regression_verdict(entry, metric.value, limits, rules.noise_multiple)
        if verdict is None:
            continue
        status, message = verdict
        rank = (_SEVERITY[status], drop)
        if worst is None or rank > worst[0]:
            worst = (rank, status, message)
    if worst is None:
        return judged
    _, status, message = worst
    current = _SEVERITY.get(judged.status)
    if current is not None and _SEVERITY[status] > current:
        judged.status = status
        judged.message = message
    return judged
