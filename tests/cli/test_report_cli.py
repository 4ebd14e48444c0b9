"""`acceldoctor report FILE [--html OUT]` as a user runs it: a page written, a summary shown, bad input refused."""

from __future__ import annotations

import json
import os

import pytest

from acceldoctor.cli.errors import UsageError
from acceldoctor.cli.report_command import run_report_command
from acceldoctor.report.model import DeviceInfo, HostInfo, Metric, Report, Result, Status

PREVIOUS_PAGE = "<p>the page from yesterday</p>\n"


def _stress_report() -> Report:
    timeline = {"cuda:0": [{"t_s": float(t), "tflops": 0.09, "iterations": 300, "wrong_elements": 0,
                            "nan_elements": 0, "telemetry": {"temperature_c": 60.0 + t, "power_w": 350.0,
                                                             "clock_mhz": 1980, "throttle": []}}
                           for t in range(1, 6)]}
    result = Result(check="stability.gemm_burn", device="cuda:0", status=Status.PASS, doc="stability.gemm_burn",
                    message="no wrong element in 1500 products.",
                    metrics=[Metric(name="tflops", value=0.09, unit="TFLOP/s", dtype="float32")])
    report = Report(run_id="f" * 32, started_at="2026-11-29T10:00:00+00:00", finished_at="2026-11-29T10:00:05+00:00",
                    host=HostInfo(hostname="node-3", os="Linux", python="3.12", torch="2.5.1"),
                    devices=[DeviceInfo(id="cuda:0", name="H100", vendor="nvidia")], results=[result],
                    timeline=timeline, exit_code=0)
    report.refresh_summary()
    return report


@pytest.fixture
def report_file(tmp_path):
    path = tmp_path / "stress.json"
    path.write_text(_stress_report().to_json())
    return path


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("acceldoctor: error: ") and "internal error" not in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_html_page_is_written_and_replaces_an_old_one(cli, report_file, tmp_path):
    out = tmp_path / "page.html"
    out.write_text(PREVIOUS_PAGE)
    proc = cli("report", str(report_file), "--html", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(out) in proc.stdout
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "node-3" in page and "<svg" in page
    assert 'data-quantity="temperature_c"' in page
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_without_html_the_summary_is_printed(cli, report_file):
    proc = cli("report", str(report_file))
    assert proc.returncode == 0, proc.stderr
    assert "stability.gemm_burn" in proc.stdout and "healthy" in proc.stdout


def _write_bad(tmp_path, kind: str):
    path = tmp_path / f"{kind}.json"
    if kind == "binary":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "not_json":
        path.write_text("this is a log, not a report\n")
    elif kind == "wrong_schema":
        path.write_text(json.dumps({"schema": "acceldoctor.baseline/1", "metrics": []}))
    elif kind == "invalid":
        path.write_text(json.dumps({"schema": "acceldoctor.report/1", "run_id": 7, "results": "many"}))
    elif kind == "a_list":
        path.write_text("[1, 2, 3]")
    elif kind == "missing":
        pass
    elif kind == "folder":
        path.mkdir()
    return path


@pytest.mark.parametrize(("kind", "needle"), [
    ("missing", "does not exist"), ("binary", "is not JSON"), ("not_json", "is not JSON"),
    ("wrong_schema", "is not an acceldoctor report"), ("invalid", "is invalid"),
    ("a_list", "is not an acceldoctor report"), ("folder", "is not a file"),
])
def test_a_file_that_is_not_a_report_is_one_line_and_leaves_the_old_page(cli, tmp_path, kind, needle):
    out = tmp_path / "page.html"
    out.write_text(PREVIOUS_PAGE)
    proc = cli("report", str(_write_bad(tmp_path, kind)), "--html", str(out))
    assert_one_line_error(proc, needle)
    assert out.read_text() == PREVIOUS_PAGE


def test_an_unwritable_out_is_one_line(cli, report_file, tmp_path):
    assert_one_line_error(cli("report", str(report_file), "--html", str(tmp_path / "no" / "page.html")),
                          "cannot write the page", "does not exist")
    assert_one_line_error(cli("report", str(report_file), "--html", str(tmp_path)), "is a folder")
    assert_one_line_error(cli("report", str(report_file), "--html", str(report_file)), "the report itself")
    assert json.loads(report_file.read_text())["run_id"] == "f" * 32


def test_a_failed_write_keeps_the_old_page_and_leaves_no_temporary_file(report_file, tmp_path, monkeypatch):
    out = tmp_path / "page.html"
    out.write_text(PREVIOUS_PAGE)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(UsageError, match="cannot write the page to .*No space left on device"):
        run_report_command(report_file, out)
    assert out.read_text() == PREVIOUS_PAGE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html", "stress.json"]
