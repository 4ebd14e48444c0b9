"""The interconnect results as tables a person reads like nccl-tests' output: bus bandwidth per message size for
each collective, and the point-to-point matrix (rows send, columns receive). Built from the report alone."""

from __future__ import annotations

import re

from rich.console import Console
from rich.table import Table

from acceldoctor.report.model import Report, Result

_PER_SIZE = re.compile(r"^(busbw_gbps|time_us)@(\w+)$")
_TO_RANK = re.compile(r"^(bandwidth_gbps|latency_us)_to_rank(\d+)$")


def _first_rank(results: list[Result], check: str) -> Result | None:
    ranked = [r for r in results if r.check == check and r.rank is not None and r.metrics]
    return min(ranked, key=lambda r: r.rank) if ranked else None


def size_table(report: Report) -> Table | None:
    """One row per message size, one busbw and time column pair per collective (from the lowest rank's result)."""
    columns: dict[str, dict[str, dict[str, float]]] = {}  # op -> size label -> {busbw_gbps, time_us}
    sizes: list[str] = []
    for check in dict.fromkeys(r.check for r in report.results if r.check.startswith("interconnect.")):
        result = _first_rank(report.results, check)
        if result is None:
            continue
        for metric in result.metrics:
            if (m := _PER_SIZE.match(metric.name)) and metric.value is not None:
                kind, size = m.groups()
                columns.setdefault(check.removeprefix("interconnect."), {}).setdefault(size, {})[kind] = metric.value
                if size not in sizes:
                    sizes.append(size)
    if not columns:
        return None
    table = Table(title="collectives: bus bandwidth (GB/s) and time (us) per message size", expand=False)
    table.add_column("size", justify="right")
    for op in columns:
        table.add_column(f"{op} GB/s", justify="right")
        table.add_column("us", justify="right")
    for size in sizes:
        row = [size]
        for per_size in columns.values():
            cell = per_size.get(size, {})
            row += [f"{cell['busbw_gbps']:.3g}" if "busbw_gbps" in cell else "",
                    f"{cell['time_us']:.3g}" if "time_us" in cell else ""]
        table.add_row(*row)
    return table


def p2p_table(report: Report) -> Table | None:
    """The bandwidth matrix (and latency beneath each figure): row = sender, column = receiver."""
    cells: dict[tuple[int, int], dict[str, float]] = {}
    for result in report.results:
        if result.check != "interconnect.p2p" or result.rank is None:
            continue
        for metric in result.metrics:
            if (m := _TO_RANK.match(metric.name)) and metric.value is not None:
                cells.setdefault((result.rank, int(m.group(2))), {})[m.group(1)] = metric.value
    if not cells:
        return None
    ranks = sorted({r for pair in cells for r in pair})
    table = Table(title="point to point: GB/s / latency us (row sends, column receives)", expand=False)
    table.add_column("src \\ dst", justify="right")
    for dst in ranks:
        table.add_column(str(dst), justify="right")
    for src in ranks:
        row = [str(src)]
        for dst in ranks:
            cell = cells.get((src, dst))
            row.append("-" if cell is None else
                       f"{cell.get('bandwidth_gbps', float('nan')):.3g} / {cell.get('latency_us', float('nan')):.3g}")
        table.add_row(*row)
    return table


def render_interconnect(report: Report, console: Console) -> None:
    for table in (size_table(report), p2p_table(report)):
        if table is not None:
            console.print(table)
