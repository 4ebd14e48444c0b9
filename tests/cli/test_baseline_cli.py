"""`acceldoctor baseline create` and `acceldoctor check --baseline` as a user runs them."""

import json

import pytest

GEMM = ("check", "--level", "standard", "--select", "performance.gemm", "--param", "performance.gemm.sizes=[128]")


def test_healthy_repeat_passes_and_a_25_percent_slower_matmul_fails_against_the_baseline(
        cli, tmp_path, healthy_gemm_reports, gemm_run):
    baseline = tmp_path / "b.json"
    proc = cli("baseline", "create", *map(str, healthy_gemm_reports), "-o", str(baseline))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(baseline.read_text())
    assert data["schema"] == "acceldoctor.baseline/1"
    assert {m["metric"] for m in data["metrics"]} == {"tflops"}
    assert all(m["n"] == 4 and m["device_kind"] for m in data["metrics"])

    again = tmp_path / "c.json"
    proc = cli(*gemm_run, "--baseline", str(baseline), "--json", str(again))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [result] = json.loads(again.read_text())["results"]
    tflops = [m for m in result["metrics"] if m["name"] == "tflops"]
    assert tflops and all(m["baseline"] is not None for m in tflops)
    assert all(m["baseline"] is None for m in result["metrics"] if m["name"] != "tflops")

    proc = cli(*gemm_run, "--baseline", str(baseline), "--inject", "slow-matmul", "--json", str(again))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [result] = json.loads(again.read_text())["results"]
    assert result["status"] == "fail"
    assert "tflops" in result["message"] and "baseline" in result["message"]
    assert "Confirmed by a second measurement" in result["message"]


def _report(tmp_path, metrics):
    report = {"schema": "acceldoctor.report/1", "run_id": "r1", "started_at": "2026-01-01T00:00:00+00:00",
              "host": {"hostname": "h", "os": "Linux", "python": "3.12"},
              "devices": [{"id": "cpu", "name": "AMD EPYC", "vendor": "AMD"}],
              "results": [{"check": "performance.gemm", "device": "cpu", "status": "pass", "message": "ok",
                           "doc": "performance.gemm", "metrics": metrics}]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    return path


@pytest.mark.parametrize("case, expected", [
    ("missing", "does not exist"),
    ("not_json", "not JSON"),
    ("wrong_schema", "not an acceldoctor report"),
    ("invalid_report", "is invalid"),
    ("no_metric", "no rate or time metric"),
])
def test_bad_input_to_baseline_create_is_one_line_exit_2(cli, tmp_path, case, expected):
    if case == "missing":
        path = tmp_path / "nope.json"
    elif case == "not_json":
        path = tmp_path / "x.json"
        path.write_text("{not json")
    elif case == "wrong_schema":
        path = tmp_path / "x.json"
        path.write_text(json.dumps({"schema": "acceldoctor.baseline/1"}))
    elif case == "invalid_report":
        path = tmp_path / "x.json"
        path.write_text(json.dumps({"schema": "acceldoctor.report/1", "run_id": "r"}))
    else:
        path = _report(tmp_path, [{"name": "tflops_spread", "value": 0.01, "unit": "ratio"}])
    out = tmp_path / "b.json"
    proc = cli("baseline", "create", str(path), "-o", str(out))
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not out.exists()


def test_check_with_a_bad_baseline_is_one_line_exit_2(cli, tmp_path):
    report = _report(tmp_path, [{"name": "tflops", "value": 1.0, "unit": "TFLOP/s", "dtype": "float32"}])
    for path, expected in [(tmp_path / "nope.json", "does not exist"), (report, "not a baseline")]:
        proc = cli(*GEMM, "--baseline", str(path))
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_create_writes_a_baseline_from_a_report(cli, tmp_path):
    report = _report(tmp_path, [{"name": "tflops", "value": 1.5, "unit": "TFLOP/s", "dtype": "float32"}])
    out = tmp_path / "b.json"
    proc = cli("baseline", "create", str(report), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    [entry] = json.loads(out.read_text())["metrics"]
    assert (entry["median"], entry["mad"], entry["n"], entry["device_kind"]) == (1.5, 0, 1, "AMD EPYC")
