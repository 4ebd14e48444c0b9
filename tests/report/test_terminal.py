"""The terminal rendering of a report: what a person reads after `acceldoctor check`."""

import io

from rich.console import Console

from acceldoctor.devices.versions import host_info
from acceldoctor.report.model import Metric, Report, Result, Status
from acceldoctor.report.terminal import render_summary


def _render(results) -> str:
    report = Report(run_id="0" * 32, started_at="2026-11-29T00:00:00+00:00", host=host_info(), devices=[],
                    results=results)
    report.refresh_summary()
    out = io.StringIO()
    render_summary(report, Console(file=out, width=250, color_system=None))
    return out.getvalue()


def test_messages_quoting_tool_output_in_brackets_are_printed_as_written():
    message = "could not finish ([/__w/pytorch/third_party/gloo/pair.cc:553] Connection closed by peer)"
    text = _render([Result(check="interconnect.all_reduce", device="cpu", status=Status.ERROR, message=message,
                           doc="interconnect.all_reduce", rank=0, host="vm")])
    assert "[/__w/pytorch/third_party/gloo/pair.cc:553] Connection closed by peer" in text
    assert "cpu rank 0" in text


def test_rank_results_become_a_size_table_and_a_point_to_point_matrix():
    def p2p(rank, peers):
        metrics = [Metric(name=f"bandwidth_gbps_to_rank{d}", value=bw, unit="GB/s") for d, bw in peers.items()]
        metrics += [Metric(name=f"latency_us_to_rank{d}", value=12.0, unit="us") for d in peers]
        return Result(check="interconnect.p2p", device="cpu", status=Status.PASS, message="ok", metrics=metrics,
                      doc="interconnect.p2p", rank=rank, host="vm")

    sizes = [Metric(name="busbw_gbps@1KiB", value=0.5, unit="GB/s"),
             Metric(name="time_us@1KiB", value=40.0, unit="us"),
             Metric(name="busbw_gbps@2MiB", value=7.25, unit="GB/s"),
             Metric(name="time_us@2MiB", value=500.0, unit="us")]
    text = _render([
        Result(check="interconnect.all_reduce", device="cpu", status=Status.PASS, message="ok", metrics=sizes,
               doc="interconnect.all_reduce", rank=0, host="vm"),
        p2p(0, {1: 3.5}), p2p(1, {0: 0.25}),
    ])
    size_rows = [line for line in text.splitlines() if "2MiB" in line]
    assert size_rows and "7.25" in size_rows[0] and "500" in size_rows[0]
    matrix = text[text.index("point to point"):]
    row0 = next(line for line in matrix.splitlines() if line.strip("│ ").startswith("0 "))
    row1 = next(line for line in matrix.splitlines() if line.strip("│ ").startswith("1 "))
    assert "3.5 / 12" in row0 and "0.25 / 12" in row1
