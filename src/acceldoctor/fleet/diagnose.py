"""Apply the diagnose rules to a fleet's devices: each rule kind is one pure function from figures to findings."""

from __future__ import annotations

import fnmatch
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from acceldoctor.baseline.baseline import (
    MAD_TO_SIGMA,
    Baseline,
    regression_verdict,
    worsening,
)
from acceldoctor.baseline.rules import Thresholds
from acceldoctor.fleet.observations import DeviceFigures, MetricKey, collect_devices
from acceldoctor.fleet.rules import BaselineRule, DiagnoseRules, OutlierRule, StatusRule, ThresholdRule
from acceldoctor.report.model import Report, Status

DIAGNOSIS_SCHEMA = "acceldoctor.diagnosis/1"


@dataclass(frozen=True)
class Finding:
    node: str
    device: str
    model: str
    software: str
    rule: str
    severity: str  # "warn" or "fail"
    check: str
    metric: str | None
    dtype: str | None
    value: float | None
    unit: str | None
    reference: float | None  # what the value is judged against: a threshold, a baseline or the fleet median
    message: str


@dataclass(frozen=True)
class Group:
    """Devices of one model and software set, compared with each other on one metric."""

    model: str
    software: str
    metric: MetricKey
    unit: str
    devices: int
    median: float
    mad: float


@dataclass
class Diagnosis:
    nodes: list[str]
    devices: int
    findings: list[Finding] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    skipped_rules: list[str] = field(default_factory=list)  # rule ids that could not apply, with why

    @property
    def flagged_nodes(self) -> list[str]:
        return sorted({f.node for f in self.findings if f.severity == "fail"})

    @property
    def exit_code(self) -> int:
        return 1 if self.flagged_nodes else 0


def _finding(device: DeviceFigures, rule, metric: MetricKey | None, value: float | None, reference: float | None,
             message: str, severity: str | None = None) -> Finding:
    return Finding(node=device.key.node, device=device.key.device, model=device.model, software=device.software,
                   rule=rule.id, severity=severity or rule.severity, check=metric.check if metric else "",
                   metric=metric.metric if metric else None, dtype=metric.dtype if metric else None, value=value,
                   unit=device.units.get(metric) if metric else None, reference=reference, message=message)


def apply_status_rule(rule: StatusRule, devices: list[DeviceFigures]) -> list[Finding]:
    """One finding per device and check that ended in one of the rule's statuses (repeats say so, once)."""
    findings = []
    for device in devices:
        by_check: dict[str, list] = {}
        for result in device.problems:
            if result.status.value in rule.statuses:
                by_check.setdefault(result.check, []).append(result)
        for check, results in by_check.items():
            first = results[0]
            times = f" ({len(results)} reports)" if len(results) > 1 else ""
            findings.append(Finding(
                node=device.key.node, device=device.key.device, model=device.model, software=device.software,
                rule=rule.id, severity=rule.severity, check=check, metric=None, dtype=None, value=None, unit=None,
                reference=None, message=f"{check} reported {first.status.value}{times}: {first.message}"))
    return findings


def apply_threshold_rule(rule: ThresholdRule, devices: list[DeviceFigures]) -> list[Finding]:
    findings = []
    for device in devices:
        for metric in device.values:
            if not (fnmatch.fnmatchcase(metric.check, rule.check) and fnmatch.fnmatchcase(metric.metric, rule.metric)
                    and (rule.dtype is None or metric.dtype == rule.dtype)):
                continue
            value = device.figure(metric)
            if rule.below is not None and value < rule.below:
                findings.append(_finding(device, rule, metric, value, rule.below,
                                         f"{metric} is {value:.4g}, below {rule.below:g}."))
            elif rule.above is not None and value > rule.above:
                findings.append(_finding(device, rule, metric, value, rule.above,
                                         f"{metric} is {value:.4g}, above {rule.above:g}."))
    return findings


def apply_baseline_rule(rule: BaselineRule, devices: list[DeviceFigures], baseline: Baseline) -> list[Finding]:
    limits = Thresholds(fail_drop=rule.fail_drop, warn_drop=rule.warn_drop)
    findings = []
    for device in devices:
        for metric in device.values:
            entry = baseline.entry(metric.check, device.model, metric.metric, metric.dtype)
            if entry is None:
                continue
            value = device.figure(metric)
            verdict = regression_verdict(entry, value, limits, rule.noise_multiple)
            if verdict is None:
                continue
            status, sentence = verdict
            severity = rule.severity if status is Status.FAIL else "warn"
            findings.append(_finding(device, rule, metric, value, entry.median, f"{metric.check} {sentence}",
                                     severity))
    return findings


def _groups(devices: list[DeviceFigures]) -> dict[tuple[str, str, MetricKey], list[DeviceFigures]]:
    groups: dict[tuple[str, str, MetricKey], list[DeviceFigures]] = {}
    for device in devices:
        for metric in device.values:
            if device.direction(metric) is not None:
                groups.setdefault((device.model, device.software, metric), []).append(device)
    return groups


def apply_outlier_rule(rule: OutlierRule, devices: list[DeviceFigures]) -> tuple[list[Finding], list[Group]]:
    findings, summaries = [], []
    for (model, software, metric), members in sorted(_groups(devices).items(), key=lambda kv: str(kv[0])):
        values = [d.figure(metric) for d in members]
        median = statistics.median(values)
        mad = statistics.median(abs(v - median) for v in values)
        unit = members[0].units[metric]
        summaries.append(Group(model, software, metric, unit, len(members), median, mad))
        if len(members) < rule.min_group or median == 0:
            continue
        for device, value in zip(members, values, strict=True):
            worse = worsening(device.direction(metric), value, median)
            sigmas = abs(value - median) / (MAD_TO_SIGMA * mad) if mad > 0 else float("inf")
            if worse > rule.min_change and sigmas > rule.mad_multiple:
                spread = f"{sigmas:.1f} robust standard deviations" if mad > 0 else "while the others agree exactly"
                findings.append(_finding(
                    device, rule, metric, value, median,
                    f"{metric} is {value:.4g} {unit}, {worse:.0%} worse than the median {median:.4g} {unit} "
                    f"of {len(members)} {model} devices on the same software ({spread})."))
    return findings, summaries


def diagnose(reports: Iterable[Report], rules: DiagnoseRules, baseline: Baseline | None = None) -> Diagnosis:
    reports = list(reports)
    devices = collect_devices(reports)
    diagnosis = Diagnosis(nodes=sorted({r.host.hostname for r in reports}), devices=len(devices))
    for rule in rules.rules:
        if isinstance(rule, StatusRule):
            diagnosis.findings += apply_status_rule(rule, devices)
        elif isinstance(rule, ThresholdRule):
            diagnosis.findings += apply_threshold_rule(rule, devices)
        elif isinstance(rule, BaselineRule):
            if baseline is None:
                diagnosis.skipped_rules.append(f"{rule.id} (no --baseline given)")
                continue
            diagnosis.findings += apply_baseline_rule(rule, devices, baseline)
        else:
            found, groups = apply_outlier_rule(rule, devices)
            diagnosis.findings += found
            diagnosis.groups += [g for g in groups if g not in diagnosis.groups]
    severity = {"fail": 0, "warn": 1}
    diagnosis.findings.sort(key=lambda f: (severity[f.severity], f.node, f.device, f.rule, f.check, f.metric or ""))
    return diagnosis
