"""The HTML report page: what `acceldoctor report FILE --html OUT` writes and the portal will serve."""

from __future__ import annotations

import html
import math
import re

import pytest

from acceldoctor.report.html import render_report_html, report_page
from acceldoctor.report.model import DeviceInfo, HostInfo, Metric, Report, Result, Status
from acceldoctor.report.svg_plots import Mark, line_chart, nice_ticks, step_chart
from acceldoctor.report.timeline_plots import device_timeline

HOSTILE = "<script>alert(1)</script>"


def _sample(t: float, *, wrong: int = 0, telemetry: dict | None = None, workloads: bool = True) -> dict:
    sample = {"t_s": t, "tflops": 0.09, "iterations": 300, "wrong_elements": wrong, "nan_elements": 0}
    if workloads:
        sample["workloads"] = {
            "gemm_fp32": {"iterations": 300, "wrong_elements": wrong, "nan_elements": 0, "rate": 0.09,
                          "unit": "TFLOP/s"},
            "gemm_bf16": {"iterations": 900, "wrong_elements": 0, "nan_elements": 0, "rate": 0.31, "unit": "TFLOP/s"},
            "memory_soak": {"iterations": 40, "wrong_elements": 0, "nan_elements": 0, "rate": 8.1 - t / 100,
                            "unit": "GB/s"},
            "train_loop": {"iterations": 12, "wrong_elements": 0, "nan_elements": 0, "rate": 3.0, "unit": "steps/s"},
        }
    if telemetry is not None:
        sample["telemetry"] = telemetry
    return sample


def _gpu_telemetry(t: float) -> dict:
    hot = 4 <= t <= 6
    return {"temperature_c": 60.0 + t, "power_w": 350.2, "clock_mhz": 1980 - (200 if hot else 0),
            "throttle": ["software thermal slowdown"] if hot else [], "ecc_uncorrected": 0}


def _report(results=(), timeline=None, devices=None, finished=True) -> Report:
    host = HostInfo(hostname="node-7", os="Linux-6.8", python="3.12.3", torch="2.5.1",
                    stack={"cuda": "12.4", "driver": "550.54"})
    devices = devices if devices is not None else [
        DeviceInfo(id="cuda:0", name="NVIDIA H100 80GB HBM3", vendor="nvidia", memory_bytes=80 * 2**30,
                   driver_version="550.54", runtime_version="12.4", serial="S123")]
    report = Report(run_id="a1b2c3d4" * 4, started_at="2026-11-29T10:00:00+00:00",
                    finished_at="2026-11-29T10:00:10+00:00" if finished else None, host=host, devices=devices,
                    results=list(results), timeline=timeline)
    report.refresh_summary()
    report.exit_code = 1 if any(r.status.is_problem for r in report.results) else 0
    return report


def _burn_result(device: str, status: Status = Status.PASS, message: str = "no wrong element in 3000 products.",
                 **kwargs) -> Result:
    return Result(check="stability.gemm_burn", device=device, status=status, message=message, doc="stability.gemm_burn",
                  metrics=[Metric(name="tflops", value=0.09, unit="TFLOP/s", dtype="float32", baseline=0.1),
                           Metric(name="drift", value=0.01, unit="ratio"), Metric(name="wrong_elements", value=0),
                           Metric(name="nan_elements", value=0), Metric(name="iterations", value=3000)], **kwargs)


def _figures(page: str) -> dict[str, int]:
    """data-quantity -> how many charts of it the page holds."""
    counts: dict[str, int] = {}
    for quantity in re.findall(r'<figure data-quantity="([^"]*)"><svg ', page):
        counts[quantity] = counts.get(quantity, 0) + 1
    return counts


def test_stress_report_plots_every_quantity_per_device_and_marks_throttling_and_errors():
    gpu = [_sample(t, wrong=3 if t == 8 else 0, telemetry=_gpu_telemetry(t)) for t in range(1, 11)]
    gpu1 = [_sample(t, telemetry=_gpu_telemetry(t)) for t in range(1, 11)]
    devices = [DeviceInfo(id="cuda:0", name="H100", vendor="nvidia"), DeviceInfo(id="cuda:1", name="H100",
                                                                               vendor="nvidia")]
    report = _report([_burn_result("cuda:0", Status.FAIL, "3 wrong elements at 8 s."), _burn_result("cuda:1")],
                     timeline={"cuda:0": gpu, "cuda:1": gpu1}, devices=devices)
    page = render_report_html(report)
    assert _figures(page) == {"throughput:TFLOP/s": 2, "throughput:GB/s": 2, "throughput:steps/s": 2,
                              "temperature_c": 2, "power_w": 2, "clock_mhz": 2, "errors": 2}
    assert "no telemetry" not in page
    # The bf16 GEMM shares the TFLOP/s chart; the top-level tflops is not drawn twice next to gemm_fp32.
    assert "gemm_bf16" in page and "float32 GEMM" not in page
    assert 'class="mark mark-throttle"' in page and "from 4 s to 6 s, 3 intervals: throttled: software thermal" in page
    assert 'class="mark mark-error"' in page and "at 8 s: 3 wrong and 0 NaN elements" in page
    assert "problems found" in page and "exit code 1" in page
    assert "tflops (float32) 0.09 TFLOP/s" in page and 'title="baseline 0.1"' in page


def test_cpu_timeline_without_telemetry_says_so_instead_of_empty_charts():
    old = [{"t_s": float(t), "tflops": 0.05, "iterations": 10, "wrong_elements": 0, "nan_elements": 0}
           for t in range(1, 6)]  # an old report: no workloads, no telemetry
    report = _report([_burn_result("cpu")], timeline={"cpu": old},
                     devices=[DeviceInfo(id="cpu", name="x86_64", vendor="cpu")])
    page = render_report_html(report)
    assert _figures(page) == {"throughput:TFLOP/s": 1, "errors": 1}
    assert "no telemetry on this device" in page
    assert "float32 GEMM" in page  # the top-level figure stands in for the workloads
    assert "healthy: no problem found" in page and "exit code 0: healthy" in page


def test_partial_telemetry_plots_what_exists_and_names_what_is_missing():
    samples = [_sample(t, telemetry={"temperature_c": 50.0 + t}) for t in range(3)]
    view = device_timeline("npu:0", samples)
    assert [c.quantity for c in view.charts if not c.quantity.startswith("throughput")] == ["temperature_c", "errors"]
    assert "this device reports no power" in view.notes and "this device reports no clock" in view.notes


def test_hostile_text_is_shown_escaped_and_never_runs():
    hostile_device = f'cuda:0"><img src=x onerror=alert(1)>{HOSTILE}'
    result = Result(check="correctness.matmul", device=hostile_device, status=Status.FAIL, message=f"bad {HOSTILE}",
                    doc="correctness.matmul", metrics=[Metric(name=HOSTILE, value=1.0, unit=HOSTILE)])
    samples = [_sample(t, telemetry={"temperature_c": 50.0, "throttle": [HOSTILE]}) for t in range(3)]
    for sample in samples:
        sample["workloads"]["gemm_fp32"]["unit"] = HOSTILE
        sample["workloads"][HOSTILE] = {"rate": 1.0, "unit": "http://evil.example/x"}
    devices = [DeviceInfo(id=hostile_device, name=HOSTILE, vendor=HOSTILE, driver_version="https://evil.example")]
    report = _report([result], timeline={hostile_device: samples}, devices=devices)
    report.host.hostname = HOSTILE
    page = render_report_html(report)
    assert "<script" not in page.lower() and "<img" not in page
    assert html.escape(HOSTILE, quote=False) in page  # shown, as text
    assert "href=" not in page and "onerror=alert" not in page.replace("&lt;img src=x onerror=alert", "")
    # The only URLs are the report's own text, shown as such.
    assert set(re.findall(r"https?://[\w./-]*", page)) == {"http://evil.example/x", "https://evil.example"}


def test_page_holds_no_url_no_script_and_inlines_its_css():
    samples = [_sample(t, telemetry=_gpu_telemetry(t)) for t in range(1, 4)]
    page = render_report_html(_report([_burn_result("cuda:0")], timeline={"cuda:0": samples}))
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower() and "<link" not in page and "@import" not in page
    assert "<style>" in page and ".acceldoctor-report" in page
    assert page.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("timeline", [None, {}, {"cuda:0": []}, {"cuda:0": [{"t_s": "soon", "telemetry": "n/a"}]}])
def test_reports_with_little_or_nothing_in_them_still_render(timeline):
    page = render_report_html(_report([], timeline=timeline, devices=[], finished=False))
    assert "no result in this report" in page and "This report is partial" in page
    assert "The report names no device" in page
    assert ("Over time" in page) is (timeline is not None)
    if timeline == {}:
        assert "no interval was recorded" in page
    if timeline == {"cuda:0": []}:
        assert "no sample was recorded for this device" in page


def test_ecc_rises_error_events_and_bad_health_are_marked_but_an_admin_clock_setting_is_not():
    telemetry = [
        {"ecc_uncorrected": 5, "throttle": ["applications clocks setting"], "power_w": 300.0, "power_limit_w": 400.0},
        {"ecc_uncorrected": 5, "xid": [], "health": "OK"},  # 5 from before the run: not news
        {"ecc_uncorrected": 6, "xid": [79], "health": "DBE pending"},
    ]
    view = device_timeline("cuda:0", [{"t_s": float(t), "telemetry": tele} for t, tele in enumerate(telemetry)])
    assert view.marked == ["at 2 s: uncorrected ECC errors rose to 6; error events 79; health: DBE pending"]
    power = next(c.svg for c in view.charts if c.quantity == "power_w")
    assert ">power limit</text>" in power


def test_samples_without_time_are_plotted_against_the_interval_number():
    view = device_timeline("cpu", [{"tflops": 1.0}, {"tflops": 1.1, "wrong_elements": 2}])
    assert any("plotted against the interval's number" in note for note in view.notes)
    assert view.marked == ["at interval 2: 2 wrong and 0 NaN elements"]


def test_a_long_flapping_throttle_is_one_band_and_the_page_stays_small():
    samples = [{"t_s": float(t), "tflops": 1.0,
                "telemetry": {"temperature_c": 80.0, "throttle": ["hardware thermal slowdown"] if t % 2 else []}}
               for t in range(20000)]
    view = device_timeline("cuda:0", samples)
    assert len(view.marked) == 1 and "10000 intervals" in view.marked[0]
    page = render_report_html(_report([], timeline={"cuda:0": samples}))
    assert len(page) < 1_000_000


def test_result_table_shows_rank_and_folds_long_metric_lists():
    metrics = [Metric(name=f"busbw_gbps@{k}KiB", value=float(k), unit="GB/s") for k in range(10)]
    result = Result(check="interconnect.all_reduce", device="cuda:1", status=Status.PASS, message="ok", rank=1,
                    host="node-7", metrics=metrics, doc="interconnect.all_reduce")
    page = report_page(_report([result]))
    row = page.results[0]
    assert row.where == "cuda:1 rank 1"
    assert len(row.metrics) == 4 and len(row.more_metrics) == 6
    assert "6 more" in render_report_html(_report([result]))


def test_verdict_counts_and_an_error_only_run():
    error = Result(check="performance.gemm", device="cpu", status=Status.ERROR, message="could not run",
                   doc="performance.gemm")
    report = _report([error, _burn_result("cpu")])
    report.exit_code = 2
    verdict = report_page(report).verdict
    assert verdict.kind == "error" and verdict.counts == [("pass", 1), ("error", 1)]
    assert "exit code 2" in verdict.exit_words


# --- the SVG helpers --------------------------------------------------------------------------------------------

def _polylines(svg: str) -> list[str]:
    return re.findall(r'<polyline[^>]*points="([^"]*)"', svg)


def test_line_chart_edge_cases_do_not_crash():
    empty = line_chart({}, title="t", x_label="s", y_label="u")
    assert "no data" in empty and empty.startswith("<svg")
    assert "no data" in line_chart({"a": []}, title="t", x_label="s", y_label="u")
    assert "no data" in line_chart({"a": [(0, None), (1, math.nan)]}, title="t", x_label="s", y_label="u")
    single = line_chart({"a": [(5.0, 2.0)]}, title="t", x_label="s", y_label="u")
    assert "<circle" in single and not _polylines(single)
    flat = line_chart({"a": [(0, 3.0), (1, 3.0), (2, 3.0)]}, title="t", x_label="s", y_label="u")
    ys = {float(p.split(",")[1]) for p in _polylines(flat)[0].split()}
    assert len(ys) == 1 and "nan" not in flat.lower().replace("nan elements", "")
    odd = line_chart({"a": [(0, 1.0), (1, None), (2, math.inf), (3, "x"), "junk", (4, 2.0), (5, 1e308)]},
                     title="t", x_label="s", y_label="u")
    assert "nan" not in odd.lower() and "inf" not in odd.lower()


def test_a_gap_breaks_the_line():
    svg = line_chart({"a": [(0, 1.0), (1, 2.0), (2, None), (3, 3.0), (4, 4.0)]}, title="t", x_label="s",
                     y_label="u")
    assert len(_polylines(svg)) == 2


def test_step_chart_holds_each_value_until_the_next_sample():
    svg = step_chart({"errors": [(0, 0), (1, 0), (2, 5)]}, title="t", x_label="s", y_label="n")
    assert len(_polylines(svg)[0].split()) == 5


def test_labels_are_escaped_and_several_series_get_distinct_colours_and_a_legend():
    svg = line_chart({HOSTILE: [(0, 1), (1, 2)], "b": [(0, 2), (1, 1)]}, title=HOSTILE, x_label="<x>",
                     y_label="<y>", marks=[Mark(0.5, "error", HOSTILE)])
    assert "<script" not in svg and "&lt;x&gt;" in svg and "&lt;y&gt;" in svg
    colours = re.findall(r'<polyline[^>]*stroke="(#[0-9A-Fa-f]{6})"', svg)
    assert len(set(colours)) == 2
    assert svg.count('class="legend"') == 3  # two series and the error marker


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 1) == [0, 0.5, 1.0]
    assert nice_ticks(60, 80) == [60, 65, 70, 75, 80]
    assert nice_ticks(0, 600) == [0, 200, 400, 600]
    assert nice_ticks(3, 3) == [3]
