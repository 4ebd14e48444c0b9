"""Limits for judging a run against a baseline, as data (data/baseline_rules.yaml), with their schema check.

A metric worse than its baseline median by more than `warn_drop` warns, by more than `fail_drop` fails ("worse":
lower for a rate, higher for a time). Overrides set other limits for a check's metrics (names may be globs), on
every device type or only on some: a CPU shared with other work is far noisier than an accelerator.
"""

from __future__ import annotations

import fnmatch
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from acceldoctor.datafiles import load_validated_yaml, read_data_file

BASELINE_RULES_SCHEMA = "acceldoctor.baseline_rules/1"


class BaselineDataError(ValueError):
    """A baseline, report or rules file that cannot be read or does not validate; the message is one line."""


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Shares of the baseline median: a rate cannot drop by 100% or more, a time can rise by any multiple.
    fail_drop: float = Field(gt=0, le=10, description="A metric worse than the baseline by more than this fails.")
    warn_drop: float = Field(gt=0, le=10, description="A metric worse than the baseline by more than this warns.")

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.warn_drop > self.fail_drop:
            raise ValueError(f"warn_drop {self.warn_drop} is above fail_drop {self.fail_drop}")
        return self


class ThresholdOverride(Thresholds):
    check: str = Field(min_length=1, description="A check id or glob, e.g. 'interconnect.*'.")
    metric: str = Field(min_length=1, description="A metric name or glob, e.g. '*_bandwidth'.")
    device_types: list[str] | None = Field(
        default=None, min_length=1, description="Only on these device types (cpu, cuda, npu, xpu...); all when absent.")
    reason: str = Field(min_length=10, description="Why this metric needs other limits (its measured noise).")

    def applies_to(self, check: str, metric: str, device_type: str) -> bool:
        return (fnmatch.fnmatchcase(check, self.check) and fnmatch.fnmatchcase(metric, self.metric)
                and (self.device_types is None or device_type in self.device_types))


class BaselineRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: Literal["acceldoctor.baseline_rules/1"] = Field(alias="schema")
    about: str = Field(min_length=20, description="Why the limits are what they are: the noise measured.")
    default: Thresholds
    noise_multiple: float = Field(
        3.0, ge=0, description="Limits are widened to at least this many robust standard deviations (1.4826 x "
        "MAD) of the metric's baseline values, relative to its median; 0 turns widening off.")
    overrides: list[ThresholdOverride] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> BaselineRules:
        seen: set[tuple] = set()
        for o in self.overrides:
            key = (o.check, o.metric, tuple(o.device_types or ()))
            if key in seen:
                raise ValueError(f"override for {o.check} {o.metric} is listed twice")
            seen.add(key)
        return self

    def for_metric(self, check: str, metric: str, device_type: str = "") -> Thresholds:
        """The limits for a metric on a device type: the first override that applies, else the default."""
        for o in self.overrides:
            if o.applies_to(check, metric, device_type):
                return Thresholds(fail_drop=o.fail_drop, warn_drop=o.warn_drop)
        return self.default


def _read_rules(text: str, label: str) -> BaselineRules:
    return load_validated_yaml(text, label, BaselineRules, BaselineDataError)


@cache
def _packaged_rules() -> BaselineRules:
    text = resources.files("acceldoctor.data").joinpath("baseline_rules.yaml").read_text(encoding="utf-8")
    return _read_rules(text, "data/baseline_rules.yaml")


def load_baseline_rules(path: Path | None = None) -> BaselineRules:
    """The packaged limits, or those in `path`; a one-line BaselineDataError when they cannot be read or validated."""
    if path is None:
        return _packaged_rules()
    return _read_rules(read_data_file(path, BaselineDataError, "rules file"), str(path))


def baseline_rules_markdown(rules: BaselineRules) -> str:
    """The docs page of the packaged limits (docs/baseline_rules.md)."""
    lines = ["# Baseline limits", "",
             "Generated from `data/baseline_rules.yaml`: how `acceldoctor check --baseline B` judges each rate or "
             "time metric against the baseline's median. \"Worse\" means lower for a rate (TFLOP/s, GB/s, "
             "tokens/s) and higher for a time (us, ms, s). Each limit is widened to at least "
             f"{rules.noise_multiple:g} robust standard deviations (1.4826 x MAD) of the metric's baseline values, "
             "and a regression is measured a second time before it counts.", "",
             "| check | metrics | device types | warn beyond | fail beyond | why |", "|---|---|---|---|---|---|",
             f"| (default) | all | all | {rules.default.warn_drop:.0%} | {rules.default.fail_drop:.0%} | |"]
    for o in rules.overrides:
        types = ", ".join(o.device_types) if o.device_types else "all"
        lines.append(f"| `{o.check}` | `{o.metric}` | {types} | {o.warn_drop:.0%} | {o.fail_drop:.0%} | "
                     f"{' '.join(o.reason.split())} |")
    lines += ["", "## How the limits were chosen", "", " ".join(rules.about.split()), ""]
    return "\n".join(lines)
