"""The pages' charts, as inline SVG (no script, no external asset): a node's trends reuse the report's line chart;
a metric's distribution across the fleet is a strip plot per device model with the outliers marked.

Outliers follow the `fleet-outlier` rule of `acceldoctor diagnose` (data/diagnose_rules.yaml): within one device
model, a value worse than the median by more than `mad_multiple` robust standard deviations (1.4826 x MAD) and by
more than `min_change` of the median, in groups of at least `min_group` devices. Unlike diagnose, the portal does
not split a model's devices by software version: the page shows the whole fleet of that model.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime

from markupsafe import Markup, escape

from acceldoctor.baseline.baseline import MAD_TO_SIGMA, direction_for
from acceldoctor.fleet.rules import OutlierRule, load_diagnose_rules
from acceldoctor.portal.web.queries import Sample, TrendSeries
from acceldoctor.report.svg_plots import line_chart, nice_ticks, plottable, tick_label

WIDTH, LEFT, RIGHT, ROW, TOP, BOTTOM = 640, 170, 16, 40, 30, 40
OUTLIER_COLOUR, NORMAL_COLOUR, MEDIAN_COLOUR = "#C0392B", "#0072B2", "#333333"


def outlier_rule() -> OutlierRule:
    rules = load_diagnose_rules()
    return next(r for r in rules.rules if isinstance(r, OutlierRule))


@dataclass
class ModelGroup:
    model: str
    samples: list[Sample]
    median: float
    mad: float
    outliers: list[tuple[Sample, str]] = field(default_factory=list)  # (sample, why)

    def is_outlier(self, sample: Sample) -> bool:
        return any(s is sample for s, _ in self.outliers)


def group_by_model(samples: list[Sample], rule: OutlierRule) -> list[ModelGroup]:
    by_model: dict[str, list[Sample]] = {}
    for sample in samples:
        if plottable(sample.value) is not None:
            by_model.setdefault(sample.model, []).append(sample)
    groups = []
    for model, members in sorted(by_model.items()):
        values = [s.value for s in members]
        median = statistics.median(values)
        mad = statistics.median(abs(v - median) for v in values)
        group = ModelGroup(model, members, median, mad)
        if len(members) >= rule.min_group and median != 0:
            for sample in members:
                why = _outlier_reason(sample, median, mad, rule)
                if why:
                    group.outliers.append((sample, why))
        groups.append(group)
    return groups


def _outlier_reason(sample: Sample, median: float, mad: float, rule: OutlierRule) -> str | None:
    direction = direction_for(sample.unit)
    if direction == "higher":
        worse = (median - sample.value) / abs(median)
    elif direction == "lower":
        worse = (sample.value - median) / abs(median)
    else:  # neither better nor worse is known (a ratio, a size): far from the median either way
        worse = abs(sample.value - median) / abs(median)
    sigmas = abs(sample.value - median) / (MAD_TO_SIGMA * mad) if mad > 0 else float("inf")
    if worse > rule.min_change and sigmas > rule.mad_multiple:
        spread = f"{sigmas:.1f} robust SDs" if mad > 0 else "the others agree exactly"
        return f"{worse:.0%} {'below' if sample.value < median else 'above'} the median ({spread})"
    return None


def strip_plot(groups: list[ModelGroup], *, title: str, unit: str) -> Markup:
    """One row per device model: a dot per device (red: outlier), a bar at the median."""
    values = [s.value for g in groups for s in g.samples]
    height = TOP + ROW * max(len(groups), 1) + BOTTOM
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>", f'<text class="chart-title" x="{LEFT}" y="16">{escape(title)}</text>']
    x0, x1 = LEFT, WIDTH - RIGHT
    if not values:
        parts.append(f'<text class="no-data" x="{(x0 + x1) / 2}" y="{height / 2}" text-anchor="middle">no data</text>')
        return Markup("\n".join([*parts, "</svg>"]))
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.1 or 1.0), hi + (abs(hi) * 0.1 or 1.0)
    ticks = nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])

    def px(value: float) -> float:
        return x0 + (value - lo) / (hi - lo) * (x1 - x0)

    bottom = height - BOTTOM
    spacing = ticks[1] - ticks[0] if len(ticks) > 1 else 0.0
    for value in ticks:
        parts.append(f'<line class="grid" x1="{px(value):.1f}" y1="{TOP}" x2="{px(value):.1f}" y2="{bottom}"/>')
        parts.append(f'<text class="tick" x="{px(value):.1f}" y="{bottom + 16}" text-anchor="middle">'
                     f"{escape(tick_label(value, spacing))}</text>")
    parts.append(f'<text class="axis-label" x="{(x0 + x1) / 2}" y="{height - 6}" text-anchor="middle">'
                 f"{escape(unit)}</text>")
    for row, group in enumerate(groups):
        y = TOP + ROW * row + ROW / 2
        label = group.model if len(group.model) <= 26 else group.model[:25] + "…"
        parts.append(f'<text class="tick" x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}'
                     f"<title>{escape(group.model)}</title></text>")
        parts.append(f'<line class="grid" x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}"/>')
        for k, sample in enumerate(group.samples):
            outlier = group.is_outlier(sample)
            jitter = ((k * 7) % 11 - 5) * 1.6  # spread equal values so each device shows
            colour = OUTLIER_COLOUR if outlier else NORMAL_COLOUR
            parts.append(f'<circle class="{"outlier" if outlier else "device"}" cx="{px(sample.value):.1f}" '
                         f'cy="{y + jitter:.1f}" r="{5 if outlier else 3.5}" fill="{colour}" fill-opacity="0.8">'
                         f"<title>{escape(sample.hostname)} {escape(sample.device)}: {sample.value:.4g} "
                         f"{escape(sample.unit)}</title></circle>")
        m = px(group.median)
        parts.append(f'<line x1="{m:.1f}" y1="{y - 12:.1f}" x2="{m:.1f}" y2="{y + 12:.1f}" stroke="{MEDIAN_COLOUR}" '
                     f'stroke-width="2"><title>median {group.median:.4g}</title></line>')
    parts.append(f'<line class="axis" x1="{x0}" y1="{bottom}" x2="{x1}" y2="{bottom}"/>')
    return Markup("\n".join([*parts, "</svg>"]))


def trend_chart(series: TrendSeries, latest: datetime) -> Markup:
    """A metric over time, a line per device; x is days before the node's latest measurement (0 = latest)."""
    lines = {device: [((t - latest).total_seconds() / 86400, v) for t, v in points]
             for device, points in series.points.items()}
    dtype = f" ({series.dtype})" if series.dtype else ""
    return line_chart(lines, title=f"{series.check} {series.metric}{dtype}", x_label="days (0 = latest run)",
                      y_label=series.unit, include_zero=direction_for(series.unit) == "higher")
