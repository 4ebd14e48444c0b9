"""`acceldoctor diagnose` as an operator runs it over the reports of several nodes."""

import json

import pytest


def _as_node(source, target, node):
    report = json.loads(source.read_text())
    report["host"]["hostname"] = node
    target.write_text(json.dumps(report))
    return str(target)


def test_a_node_slowed_by_25_percent_is_singled_out_among_healthy_ones(cli, tmp_path, healthy_gemm_reports, gemm_run):
    # Each healthy report plays one node; a fifth node runs with every matrix product 25% slower.
    slow = tmp_path / "slow.json"
    proc = cli(*gemm_run, "--inject", "slow-matmul", "--json", str(slow))
    assert proc.returncode == 0, proc.stderr  # without a baseline or a fleet, a slowdown alone is not visible
    nodes = [_as_node(path, tmp_path / f"node-{i}.json", f"node-{i}") for i, path in enumerate(healthy_gemm_reports)]
    nodes.append(_as_node(slow, tmp_path / "node-slow.json", "node-slow"))
    out = tmp_path / "diagnosis.json"
    proc = cli("diagnose", *nodes, "--json", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "node-slow" in proc.stdout and "fleet-outlier" in proc.stdout and "1 defective (node-slow)" in proc.stdout
    diagnosis = json.loads(out.read_text())
    assert diagnosis["schema"] == "acceldoctor.diagnosis/1"
    assert diagnosis["flagged_nodes"] == ["node-slow"] and diagnosis["exit_code"] == 1
    assert len(diagnosis["nodes"]) == 5
    assert {(f["node"], f["rule"], f["check"]) for f in diagnosis["findings"]} == {
        ("node-slow", "fleet-outlier", "performance.gemm")}

    healthy_only = cli("diagnose", *nodes[:-1], "--json", "-")
    assert healthy_only.returncode == 0, healthy_only.stdout
    assert json.loads(healthy_only.stdout)["findings"] == []


def test_diagnose_against_a_baseline(cli, tmp_path, healthy_gemm_reports):
    baseline = tmp_path / "b.json"
    assert cli("baseline", "create", *map(str, healthy_gemm_reports[:2]), "-o", str(baseline)).returncode == 0
    data = json.loads(baseline.read_text())
    baseline.write_text(json.dumps(dict(data, metrics=[dict(m, median=m["median"] * 10) for m in data["metrics"]])))
    proc = cli("diagnose", *map(str, healthy_gemm_reports), "--baseline", str(baseline), "--json", "-")
    assert proc.returncode == 1
    findings = json.loads(proc.stdout)["findings"]
    assert findings and {f["rule"] for f in findings} == {"below-baseline"}
    assert all(f["value"] < 0.2 * f["reference"] and "against a baseline of" in f["message"] for f in findings)


@pytest.mark.parametrize("case, expected", [
    ("missing", "does not exist"),
    ("diagnosis", "not an acceldoctor report"),
    ("rules", "not valid YAML"),
    ("json_folder", "is a folder"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli, tmp_path, healthy_gemm_reports, case, expected):
    args = ["diagnose", str(healthy_gemm_reports[0])]
    out = tmp_path / "d.json"
    if case == "missing":
        args.append(str(tmp_path / "nope.json"))
    elif case == "diagnosis":
        wrong = tmp_path / "wrong.json"
        wrong.write_text(json.dumps({"schema": "acceldoctor.diagnosis/1"}))
        args.append(str(wrong))
    elif case == "rules":
        rules = tmp_path / "rules.yaml"
        rules.write_text("rules: [unclosed")
        args += ["--rules", str(rules)]
    else:
        out = tmp_path
    proc = cli(*args, "--json", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    assert case == "json_folder" or not out.exists()
