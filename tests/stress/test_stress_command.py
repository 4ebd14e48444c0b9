"""`acceldoctor stress` as an operator runs it: healthy burns, a bit flip on one device among several, a device that
slows down, a hung device, the odd device out, bad arguments."""

import json
import time

import pytest


def _stress(cli, tmp_path, *args, duration="12s"):
    out = tmp_path / "stress.json"
    begin = time.monotonic()
    proc = cli("stress", "--duration", duration, "--json", str(out), *args, timeout=300)
    return proc, (json.loads(out.read_text()) if out.exists() else None), time.monotonic() - begin


def _results(report):
    return {(r["check"], r["device"]): r for r in report["results"]}


def test_a_healthy_60_second_burn_reports_nothing_and_keeps_a_timeline(cli, tmp_path):
    proc, report, _ = _stress(cli, tmp_path, duration="60s")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = _results(report)
    for check in ("stability.gemm_burn", "stability.memory_soak", "stability.train_loop",
                  "stability.device_agreement"):
        assert results[(check, "cpu")]["status"] == "pass", results[(check, "cpu")]["message"]
    telemetry = results[("stability.telemetry", "cpu")]
    assert telemetry["status"] == "skip" and "CPU exposes no device telemetry" in telemetry["message"]
    samples = report["timeline"]["cpu"]
    assert len(samples) >= 40 and all(s["wrong_elements"] == 0 and s["tflops"] > 0 for s in samples)
    assert {"gemm_fp32", "memory_soak", "train_loop"} <= set(samples[-1]["workloads"])
    assert "fp32" in proc.stderr and "0 errors" in proc.stderr  # a line per interval while it runs


def test_a_rare_bit_flip_on_one_of_two_devices_is_caught_and_pinned_on_it(cli, tmp_path):
    # one flipped bit in one product in 100, on CPU worker 1 only; worker 0 burns the other core, healthy
    proc, report, _ = _stress(cli, tmp_path, "--device", "cpu:0,cpu:1", "--inject", "bitflip:100@cpu:1",
                              duration="30s")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    results = _results(report)
    flipped = results[("stability.gemm_burn", "cpu:1")]
    assert flipped["status"] == "fail" and "silent data corruption" in flipped["message"]
    assert flipped["message"].startswith("cpu:1 computed wrong results")
    assert results[("stability.gemm_burn", "cpu:0")]["status"] == "pass"
    assert sum(s["wrong_elements"] for s in report["timeline"]["cpu:1"]) > 0
    assert sum(s["wrong_elements"] for s in report["timeline"]["cpu:0"]) == 0


def test_a_device_that_slows_as_it_runs_is_flagged_as_drift(cli, tmp_path):
    proc, report, _ = _stress(cli, tmp_path, "--inject", "slow-drift", "--workload", "gemm", duration="20s")
    result = _results(report)[("stability.gemm_burn", "cpu")]
    assert result["status"] == "fail" and "slowed down" in result["message"], result["message"]
    change = next(m["value"] for m in result["metrics"] if m["name"] == "throughput_change")
    assert change < -0.25 and proc.returncode == 1


def test_a_hung_device_is_reported_and_the_run_still_ends_on_time(cli, tmp_path):
    proc, report, seconds = _stress(cli, tmp_path, "--device", "cpu:0,cpu:1", "--inject", "hang-matmul@cpu:0",
                                    duration="20s")
    assert proc.returncode == 1
    results = _results(report)
    hung = [r for (check, device), r in results.items() if device == "cpu:0" and r["status"] == "timeout"]
    assert len(hung) == 1 and "stopped answering" in hung[0]["message"]
    assert results[("stability.gemm_burn", "cpu:1")]["status"] == "pass"  # the other device finished its burn
    assert seconds < 20 + 45, seconds  # the watchdog, not the hung device, decides when the run ends
    assert report["finished_at"] is not None


def test_the_odd_device_out_is_named(cli, tmp_path):
    proc, report, _ = _stress(cli, tmp_path, "--device", "cpu:0,cpu:1,cpu:2", "--inject", "bitflip:1@cpu:2",
                              "--workload", "memory", duration="5s")
    results = _results(report)
    odd = results[("stability.device_agreement", "cpu:2")]
    assert odd["status"] in ("warn", "fail") and odd["message"].startswith("cpu:2"), odd["message"]
    assert results[("stability.device_agreement", "cpu:0")]["status"] == "pass"
    assert results[("stability.device_agreement", "cpu:1")]["status"] == "pass"


@pytest.mark.parametrize("args, expected", [
    (["--duration", "ten minutes"], "give a number with s, m or h"),
    (["--duration", "2s"], "at least 5 s"),
    (["--inject", "die-rank"], "fault of one rank"),
    (["--inject", "bitflip@cuda:3"], "not among the devices under stress"),
    (["--inject", "bitflip:often"], "not a whole number"),
    (["--device", "cuda:7"], "cuda:7"),
    (["--device", "cpu,cpu:1"], "not both"),
    (["--workload", "gemm,fft"], "unknown fft"),
])
def test_bad_arguments_are_one_line_usage_errors(cli, args, expected):
    proc = cli("stress", *args)
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_burn_needs_no_numpy(cli, tmp_path):
    # torch installs without numpy, and vendors' images often lack it: a numpy that cannot be imported
    shadow = tmp_path / "shadow" / "numpy"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'numpy'\")\n")
    out = tmp_path / "stress.json"
    proc = cli("stress", "--duration", "5s", "--workload", "memory", "--json", str(out),
               env={"PYTHONPATH": str(tmp_path / "shadow")}, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    statuses = {r["check"]: r["status"] for r in json.loads(out.read_text())["results"]}
    assert statuses["stability.device_agreement"] == "pass", statuses
