"""Inline SVG charts for the HTML report: pure functions, no JavaScript, no external asset.

Every function returns `markupsafe.Markup` that a jinja2 template inserts as is; every piece of text that came
from a report (series names, titles, units, marker notes) is escaped here. Points whose value is missing or not
a finite number are skipped and break the line, so a gap in the data shows as a gap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies, and in greyscale by order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
# Marker kind -> (colour, legend text).
MARK_KINDS = {"error": ("#C0392B", "errors"), "throttle": ("#8E6C00", "throttling")}
OTHER_MARK = ("#555555", "marked")

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 48, 44  # room for tick labels, the title and one row of legend
# A polyline keeps at most this many points per run (the plot is about 560 px wide): a day of 1 s samples is
# thinned to the lowest and highest value of each slice, so a spike or a dip still shows.
MAX_POINTS_PER_RUN = 1200
# Beyond this the axis arithmetic (hi - lo) overflows to infinity: such a value is treated as missing.
LARGEST_PLOTTABLE = 1e300
LEGEND_NAME_CHARS = 40  # longer names are cut (the line's tooltip keeps the whole name)

Point = tuple[float, float | None]


@dataclass(frozen=True)
class Mark:
    """A moment to point out on a chart (an interval with errors or throttling): a vertical line with a note,
    or a shaded band from `x` to `until` for a stretch of such intervals."""

    x: float
    kind: str  # "error" or "throttle": picks the colour and the legend entry
    note: str  # shown as the tooltip
    until: float | None = None


def plottable(value: object) -> float | None:
    """`value` as a finite float within the charts' range, or None (missing, text, bool, NaN, infinite, huge)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an int from JSON can exceed any float
        return None
    return value if math.isfinite(value) and abs(value) <= LARGEST_PLOTTABLE else None


def _segments(points: Sequence[Point]) -> list[list[tuple[float, float]]]:
    """The runs of consecutive plottable points; a missing value ends a run."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        try:
            x, y = (plottable(value) for value in point)
        except (TypeError, ValueError):  # not an (x, y) pair
            x = y = None
        if x is None or y is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((x, y))
    return [_thin(run) for run in runs if run]


def _thin(run: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """At most MAX_POINTS_PER_RUN points: each slice of the run keeps its lowest and highest point, in order."""
    if len(run) <= MAX_POINTS_PER_RUN:
        return run
    slices = MAX_POINTS_PER_RUN // 2
    size = len(run) / slices
    kept = []
    for k in range(slices):
        chunk = run[int(k * size):int((k + 1) * size)]
        if chunk:
            low, high = min(chunk, key=lambda p: p[1]), max(chunk, key=lambda p: p[1])
            kept += sorted({low, high}, key=chunk.index)
    return kept


def _nice_step(lo: float, hi: float, count: int) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about `count` ticks over [lo, hi]; hi > lo."""
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round tick values within [lo, hi]."""
    if not hi > lo:
        return [lo]
    step = _nice_step(lo, hi, count)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, k = [], 0
    while first + k * step <= hi + step * 1e-9 and k <= 4 * count:
        ticks.append(first + k * step)
        k += 1
    return ticks


def _axis_range(values: list[float], include_zero: bool) -> tuple[float, float]:
    """[lo, hi] covering the values, widened out to round numbers so the axis ends on a tick."""
    lo, hi = min(values), max(values)
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:  # a flat line (or one point): give it room so it sits mid-chart
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = (0.0 if include_zero and lo >= 0 else lo - pad), hi + pad
    step = _nice_step(lo, hi, 5)
    return math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step


def tick_label(value: float, step: float) -> str:
    if abs(value) >= 1e6 or (value and abs(value) < 1e-4):
        return f"{value:.3g}"
    decimals = min(max(0, -math.floor(math.log10(step))), 6) if step > 0 else 0
    text = f"{value:.{decimals}f}"
    return f"{0:.{decimals}f}" if float(text) == 0 else text  # never "-0.0"


def _frame(title: str, x_label: str, y_label: str, height: float, plot_top: float) -> list[str]:
    return [
        # No xmlns: inline SVG in HTML needs none, and the page must hold no URL at all.
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text class="chart-title" x="{LEFT}" y="16">{escape(title)}</text>',
        f'<text class="axis-label" x="{(LEFT + WIDTH - RIGHT) / 2:.1f}" y="{height - 6:.1f}" text-anchor="middle">'
        f"{escape(x_label)}</text>",
        f'<text class="axis-label" transform="translate(14 {(plot_top + height - BOTTOM) / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>',
    ]


def _legend(entries: list[tuple[str, str, bool]]) -> tuple[list[str], float]:
    """Swatches under the title, wrapping to more rows when long: (markup, y where the plot may start).

    Entries are (name, colour, dashed); text width is estimated (about 6.5 px a character at the CSS's 11 px).
    """
    parts, x, y = [], float(LEFT), 30.0
    for name, colour, dashed in entries:
        name = name if len(name) <= LEGEND_NAME_CHARS else name[:LEGEND_NAME_CHARS - 1] + "…"
        width = 18 + 6.5 * len(name) + 14
        if x > LEFT and x + width > WIDTH - RIGHT:
            x, y = float(LEFT), y + 15
        dash = ' stroke-dasharray="3 2"' if dashed else ""
        parts.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 14:.1f}" y2="{y:.1f}" stroke="{colour}" '
                     f'stroke-width="3"{dash}/>')
        parts.append(f'<text class="legend" x="{x + 18:.1f}" y="{y + 4:.1f}">{escape(name)}</text>')
        x += width
    return parts, y + 18


def _line_markup(name: str, run: list[tuple[float, float]], colour: str, step: bool, px, py) -> str:
    if len(run) == 1:  # a lone point has no line: draw it as a dot
        (x, y), = run
        return (f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(name)}: {y:.4g}</title></circle>")
    coords = []
    for k, (x, y) in enumerate(run):
        if step and k:  # hold the previous value until this sample, then jump
            coords.append(f"{px(x):.1f},{py(run[k - 1][1]):.1f}")
        coords.append(f"{px(x):.1f},{py(y):.1f}")
    return (f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(coords)}">'
            f"<title>{escape(name)}</title></polyline>")


def _mark_markup(mark: Mark, x: float, x_end: float | None, top: float, bottom: float) -> str:
    colour = MARK_KINDS.get(mark.kind, OTHER_MARK)[0]
    band = ""
    if x_end is not None and x_end > x:
        band = (f'<rect x="{x:.1f}" y="{top:.1f}" width="{x_end - x:.1f}" height="{bottom - top:.1f}" '
                f'fill="{colour}" fill-opacity="0.15"/>')
    return (f'<g class="mark mark-{escape(mark.kind)}"><title>{escape(mark.note)}</title>{band}'
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{colour}" '
            f'stroke-width="1.5" stroke-dasharray="3 2"/>'
            f'<path d="M{x - 5:.1f},{top - 1:.1f} h10 l-5,7 z" fill="{colour}"/></g>')


def _chart(series: dict[str, Sequence[Point]], *, title: str, x_label: str, y_label: str, step: bool,
           include_zero: bool, marks: Sequence[Mark]) -> Markup:
    runs = {str(name): _segments(points) for name, points in series.items()}
    xs = [x for segments in runs.values() for run in segments for x, _ in run]
    ys = [y for segments in runs.values() for run in segments for _, y in run]
    placed = [(mark, x, plottable(mark.until)) for mark in marks if (x := plottable(mark.x)) is not None]
    placed = placed if ys else []
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(runs)}
    kinds = list(dict.fromkeys(mark.kind for mark, _, _ in placed))
    legend, plot_top = _legend([(name, colour, False) for name, colour in colours.items()]
                               + [(MARK_KINDS.get(kind, OTHER_MARK)[1], MARK_KINDS.get(kind, OTHER_MARK)[0], True)
                                  for kind in kinds])
    plot_top = max(plot_top, TOP)
    height = HEIGHT + plot_top - TOP  # a long legend adds rows above the plot rather than squeezing it
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, height - BOTTOM, plot_top
    parts = _frame(title, x_label, y_label, height, plot_top)
    parts.append(f'<rect class="plot-area" x="{x0}" y="{y1:.1f}" width="{x1 - x0}" height="{y0 - y1:.1f}"/>')
    if not ys:
        parts.append(f'<text class="no-data" x="{(x0 + x1) / 2:.1f}" y="{(y0 + y1) / 2:.1f}" '
                     'text-anchor="middle">no data</text>')
        return Markup("\n".join([*parts, *legend, "</svg>"]))
    x_lo, x_hi = _axis_range(xs + [x for _, x, _ in placed] + [end for _, _, end in placed if end is not None],
                             include_zero=False)
    y_lo, y_hi = _axis_range(ys, include_zero)

    def px(x: float) -> float:
        return x0 + (x - x_lo) / (x_hi - x_lo) * (x1 - x0)

    def py(y: float) -> float:
        return y0 - (y - y_lo) / (y_hi - y_lo) * (y0 - y1)

    for ticks, horizontal in ((nice_ticks(y_lo, y_hi), True), (nice_ticks(x_lo, x_hi), False)):
        spacing = ticks[1] - ticks[0] if len(ticks) > 1 else 0.0
        for value in ticks:
            label = escape(tick_label(value, spacing))
            if horizontal:
                y = py(value)
                parts.append(f'<line class="grid" x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}"/>')
                parts.append(f'<text class="tick" x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
            else:
                x = px(value)
                parts.append(f'<line class="grid" x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y0:.1f}"/>')
                parts.append(f'<text class="tick" x="{x:.1f}" y="{y0 + 16:.1f}" text-anchor="middle">{label}</text>')
    parts.append(f'<line class="axis" x1="{x0}" y1="{y0:.1f}" x2="{x1}" y2="{y0:.1f}"/>')
    parts.append(f'<line class="axis" x1="{x0}" y1="{y0:.1f}" x2="{x0}" y2="{y1:.1f}"/>')
    lines_at = len(parts)
    for name, segments in runs.items():
        parts += [_line_markup(name, run, colours[name], step, px, py) for run in segments]
    # Marks go under the lines, so a band does not hide the data it points at.
    parts[lines_at:lines_at] = [_mark_markup(mark, px(x), None if end is None else px(end), y1, y0)
                                for mark, x, end in placed]
    return Markup("\n".join([*parts, *legend, "</svg>"]))


def line_chart(series: dict[str, Sequence[Point]], *, title: str, x_label: str, y_label: str,
               include_zero: bool = False, marks: Sequence[Mark] = ()) -> Markup:
    """A line per series (name -> (x, y) points), with axes, tick labels, a title and a legend.

    `include_zero` puts 0 on the y axis (for rates, so a 5% drop looks like 5%); `marks` draws vertical markers.
    """
    return _chart(series, title=title, x_label=x_label, y_label=y_label, step=False, include_zero=include_zero,
                  marks=marks)


def step_chart(series: dict[str, Sequence[Point]], *, title: str, x_label: str, y_label: str,
               marks: Sequence[Mark] = ()) -> Markup:
    """As line_chart, but each value holds until the next sample (for counts such as cumulative errors)."""
    return _chart(series, title=title, x_label=x_label, y_label=y_label, step=True, include_zero=True, marks=marks)
