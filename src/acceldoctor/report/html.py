"""A report as one self-contained HTML page: `acceldoctor report FILE --html OUT`, and the portal's report page.

The page body is the macro `report_body(page)` in templates/_report_body.html.j2; report.html.j2 wraps it into
an offline page with the CSS inlined. The portal renders the same macro inside its own layout:

    {% from "_report_body.html.j2" import report_body %}{{ report_body(page) }}

with `page = report_page(report)`, the loader of `template_environment()` and `report_css()` served or inlined.
Everything a report holds is text from a device, a log or a user: autoescaping is on, and the charts escape their
own labels. The page holds no script and no URL (clusters are offline); a Content-Security-Policy forbids both.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from acceldoctor.report.model import Metric, Report, Result, Status
from acceldoctor.report.terminal import where
from acceldoctor.report.timeline_plots import DeviceTimeline, timeline_views

SHOWN_METRICS = 4  # per result in the table; the rest fold away under "more"

EXIT_CODE_WORDS = {
    0: "exit code 0: healthy",
    1: "exit code 1: a problem was found",
    2: "exit code 2: a check could not run (tool or usage error)",
    130: "exit code 130: interrupted",
    143: "exit code 143: terminated",
}


@dataclass
class Verdict:
    kind: str  # "good", "bad", "error" or "none": the CSS class
    headline: str
    counts: list[tuple[str, int]]  # (status, how many), in Status order, zeros left out
    exit_words: str
    notes: list[str] = field(default_factory=list)


@dataclass
class ResultRow:
    status: str
    check: str
    where: str
    message: str
    duration: str
    metrics: list[tuple[str, str]]  # (text, tooltip: threshold and baseline)
    more_metrics: list[tuple[str, str]]
    doc: str


@dataclass
class ReportPage:
    """What the templates show: the report, and the parts of it worked out for a person."""

    report: Report
    title: str
    host_rows: list[tuple[str, str]]
    device_rows: list[dict[str, str]]
    verdict: Verdict
    results: list[ResultRow]
    timelines: list[DeviceTimeline] | None  # None: not a stress report
    device_names: dict[str, str]
    tool_version: str


def _counts(report: Report) -> dict[str, int]:
    if any(report.summary.values()) or not report.results:
        return report.summary
    counts: dict[str, int] = {}  # an old or partial report without a summary: count the results
    for result in report.results:
        counts[result.status.value] = counts.get(result.status.value, 0) + 1
    return counts


def verdict_for(report: Report) -> Verdict:
    counts = _counts(report)
    ordered = [(s.value, counts[s.value]) for s in Status if counts.get(s.value)]
    ordered += [(name, n) for name, n in counts.items() if n and name not in {s.value for s in Status}]
    problems = sum(1 for r in report.results if r.status.is_problem)
    if problems:
        kind, headline = "bad", f"problems found: {problems} result{'s' if problems != 1 else ''} show a problem"
    elif any(r.status is Status.ERROR for r in report.results):
        kind, headline = "error", "no problem found, but some checks could not run"
    elif not report.results:
        kind, headline = "none", "no result in this report"
    else:
        kind, headline = "good", "healthy: no problem found"
    code = report.exit_code
    exit_words = ("no exit code: the run had not finished when this report was written" if code is None
                  else EXIT_CODE_WORDS.get(code, f"exit code {code}"))
    notes = []
    if report.finished_at is None:
        notes.append("This report is partial: the run had not finished (or was stopped) when it was written.")
    return Verdict(kind, headline, ordered, exit_words, notes)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def metric_text(metric: Metric) -> tuple[str, str]:
    """('tflops (float32) 12.3 TFLOP/s', 'threshold 10; baseline 12.5')."""
    dtype = f" ({metric.dtype})" if metric.dtype else ""
    text = f"{metric.name}{dtype} {_number(metric.value)} {metric.unit}".rstrip()
    tooltip = "; ".join(f"{what} {_number(value)}" for what, value in
                        (("threshold", metric.threshold), ("baseline", metric.baseline)) if value is not None)
    return text, tooltip


def _result_row(result: Result, report: Report) -> ResultRow:
    metrics = [metric_text(m) for m in result.metrics]
    return ResultRow(status=result.status.value, check=result.check, where=where(result, report),
                     message=result.message, duration=f"{result.duration_s:.1f} s",
                     metrics=metrics[:SHOWN_METRICS], more_metrics=metrics[SHOWN_METRICS:], doc=result.doc)


def _extra(model) -> list[tuple[str, str]]:
    """Fields a newer tool or a vendor backend added to a device or host (the models allow extra keys)."""
    return [(str(k), str(v)) for k, v in (model.model_extra or {}).items() if v not in (None, "", [], {})]


def _host_rows(report: Report) -> list[tuple[str, str]]:
    host = report.host
    rows = [("host", host.hostname), ("os", host.os), ("python", host.python),
            ("torch", host.torch or "not recorded")]
    rows += [(name, version) for name, version in host.stack.items()]
    rows += _extra(host)
    rows += [("started", report.started_at), ("finished", report.finished_at or "not finished")]
    with contextlib.suppress(ValueError, TypeError):
        if report.finished_at:
            seconds = (datetime.fromisoformat(report.finished_at)
                       - datetime.fromisoformat(report.started_at)).total_seconds()
            rows.append(("took", f"{seconds:.0f} s"))
    rows.append(("run id", report.run_id))
    return rows


def _device_rows(report: Report) -> list[dict[str, str]]:
    rows = []
    for device in report.devices:
        memory = f"{device.memory_bytes / 2**30:.1f} GiB" if device.memory_bytes is not None else "—"
        rows.append({"id": device.id, "name": device.name, "vendor": device.vendor, "memory": memory,
                     "driver": device.driver_version or "—", "runtime": device.runtime_version or "—",
                     "other": ", ".join(f"{k}: {v}" for k, v in _extra(device))})
    return rows


def _tool_version() -> str:
    from acceldoctor import __version__

    return __version__


def report_page(report: Report) -> ReportPage:
    return ReportPage(
        report=report,
        title=f"acceldoctor report {report.run_id[:8]} on {report.host.hostname}",
        host_rows=_host_rows(report),
        device_rows=_device_rows(report),
        verdict=verdict_for(report),
        results=[_result_row(r, report) for r in report.results],
        timelines=timeline_views(report.timeline),
        device_names={d.id: d.name for d in report.devices},
        tool_version=_tool_version(),
    )


def template_environment() -> Environment:
    # autoescape=True whatever the template's name: every string from a report is untrusted text.
    return Environment(loader=PackageLoader("acceldoctor.report", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def report_css() -> str:
    return (resources.files("acceldoctor.report") / "templates" / "report.css").read_text(encoding="utf-8")


def render_report_html(report: Report) -> str:
    """The whole page, CSS inlined, charts as inline SVG: one file that opens anywhere, offline."""
    template = template_environment().get_template("report.html.j2")
    # The CSS is the package's own file, not report data: inserted as is (escaping would break `>` selectors).
    return template.render(page=report_page(report), css=Markup(report_css()))
