"""`acceldoctor stress` as an operator runs it: a healthy burn, a bit flip, a throttling device, a hung device."""

import json
import time

import pytest


def _stress(cli, tmp_path, *args, duration="12s"):
    out = tmp_path / "stress.json"
    begin = time.monotonic()
    proc = cli("stress", "--duration", duration, "--json", str(out), *args, timeout=300)
    return proc, (json.loads(out.read_text()) if out.exists() else None), time.monotonic() - begin


def test_a_healthy_burn_reports_nothing_and_keeps_a_timeline(cli, tmp_path):
    # 30 s: drift compares the first and last quarters, and on a shared CPU a 3 s quarter can catch a neighbour
    proc, report, _ = _stress(cli, tmp_path, duration="30s")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [result] = report["results"]
    assert (result["check"], result["status"]) == ("stability.gemm_burn", "pass")
    samples = report["timeline"]["cpu"]
    assert len(samples) >= 20 and all(s["wrong_elements"] == 0 and s["tflops"] > 0 for s in samples)
    assert "products" in proc.stderr  # a line per interval while it runs


def test_a_rare_bit_flip_is_caught_and_pinned_on_the_device(cli, tmp_path):
    proc, report, _ = _stress(cli, tmp_path, "--inject", "bitflip")  # one flipped bit every 50 products
    assert proc.returncode == 1
    [result] = report["results"]
    assert result["status"] == "fail" and result["device"] == "cpu"
    assert "silent data corruption" in result["message"]
    assert sum(s["wrong_elements"] for s in report["timeline"]["cpu"]) > 0


def test_a_device_that_slows_as_it_runs_is_flagged_as_drift(cli, tmp_path):
    proc, report, _ = _stress(cli, tmp_path, "--inject", "slow-drift")
    [result] = report["results"]
    assert result["status"] == "fail" and "slowed down" in result["message"], result["message"]
    change = next(m["value"] for m in result["metrics"] if m["name"] == "throughput_change")
    assert change < -0.25 and proc.returncode == 1


def test_a_hung_device_is_reported_and_the_run_still_ends_on_time(cli, tmp_path):
    proc, report, seconds = _stress(cli, tmp_path, "--inject", "hang-matmul", duration="20s")
    assert proc.returncode == 1
    [result] = report["results"]
    assert result["status"] == "timeout" and "stopped answering" in result["message"]
    assert seconds < 20 + 45, seconds  # the watchdog, not the hung device, decides when the run ends
    assert report["finished_at"] is not None


@pytest.mark.parametrize("args, expected", [
    (["--duration", "ten minutes"], "give a number with s, m or h"),
    (["--duration", "2s"], "at least 5 s"),
    (["--inject", "die-rank"], "fault of one rank"),
    (["--device", "cuda:7"], "cuda:7"),
])
def test_bad_arguments_are_one_line_usage_errors(cli, args, expected):
    proc = cli("stress", *args)
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr
