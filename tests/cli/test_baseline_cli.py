"""`acceldoctor baseline create` and `acceldoctor check --baseline` as a user runs them."""

import json

import pytest

GEMM = ("check", "--level", "standard", "--select", "performance.gemm", "--param", "performance.gemm.sizes=[128]")


def test_baseline_from_healthy_runs_then_check_against_it(cli, tmp_path):
    # On this 2-core shared CPU a size-128 GEMM repeat moves by up to ~25% even against the median of three runs
    # (see data/baseline_rules.yaml), so "a healthy repeat exits 0" cannot be asserted here without flakiness:
    # the real baseline is checked for consistency (exit 1 exactly when a figure fell beyond the fail limit), and
    # the exit codes are pinned with the same baseline scaled far below and far above anything measurable.
    reports = []
    for i in range(3):
        path = tmp_path / f"a{i}.json"
        proc = cli(*GEMM, "--json", str(path))
        assert proc.returncode == 0, proc.stderr
        reports.append(str(path))
    baseline = tmp_path / "b.json"
    proc = cli("baseline", "create", *reports, "-o", str(baseline))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(baseline.read_text())
    assert data["schema"] == "acceldoctor.baseline/1"
    assert {m["metric"] for m in data["metrics"]} == {"tflops"}
    assert all(m["n"] == 3 and m["device_kind"] for m in data["metrics"])

    again = tmp_path / "c.json"
    proc = cli(*GEMM, "--baseline", str(baseline), "--json", str(again))
    [result] = json.loads(again.read_text())["results"]
    tflops = [m for m in result["metrics"] if m["name"] == "tflops"]
    assert tflops and all(m["baseline"] is not None for m in tflops)
    assert all(m["baseline"] is None for m in result["metrics"] if m["name"] != "tflops")
    regressed = any((m["baseline"] - m["value"]) / m["baseline"] > 0.10 for m in tflops)
    assert proc.returncode == (1 if regressed else 0), proc.stdout + proc.stderr

    for scale, code, status in [(1e-6, 0, "pass"), (1e6, 1, "fail")]:
        scaled = dict(data, metrics=[dict(m, median=m["median"] * scale) for m in data["metrics"]])
        baseline.write_text(json.dumps(scaled))
        proc = cli(*GEMM, "--baseline", str(baseline), "--json", str(again))
        assert proc.returncode == code, proc.stdout + proc.stderr
        [result] = json.loads(again.read_text())["results"]
        assert result["status"] == status
        if status == "fail":
            assert "tflops" in result["message"] and "-100%" in result["message"]


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
