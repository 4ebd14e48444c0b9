"""performance.host_transfer: memcpy figures on a healthy CPU (no pinned memory there); judged against a spec sheet."""

from acceldoctor.checks.performance import host_transfer
from acceldoctor.runner.worker import Task, run_task

CHECK = "performance.host_transfer"
SMALL = {"sizes_mib": [1, 4], "repeats": 5, "warmup": 1}


def _metrics(result):
    return {m["name"]: m for m in result["metrics"]}


def test_healthy_cpu_reports_pageable_copies_both_ways_in_gb_per_s_and_says_it_is_a_memcpy():
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    assert result["status"] == "pass", result["message"]
    metrics = _metrics(result)
    for direction in ("h2d", "d2h"):
        bandwidth = metrics[f"{direction}_pageable_bandwidth"]
        assert bandwidth["unit"] == "GB/s" and bandwidth["value"] > 0
        assert metrics[f"{direction}_pageable_spread"]["unit"] == "ratio"
        assert metrics[f"{direction}_pageable_spread"]["value"] >= 0
        assert metrics[f"{direction}_peak_size"]["value"] in (1, 4)
    assert not [name for name in metrics if "pinned" in name or "efficiency" in name], metrics
    message = result["message"]
    assert "memcpy" in message and "pinned memory does not apply" in message and "no spec sheet" in message
    assert "host-to-device" in message and "device-to-host" in message and "GB/s" in message


def test_check_is_not_at_quick_level():
    from acceldoctor.checks.registry import get_check, select_checks

    assert get_check(CHECK).levels == ("standard", "full")
    assert CHECK not in {spec.id for spec in select_checks("quick")}


def test_copies_far_below_the_host_link_fail_with_efficiency(monkeypatch, spec_sheet):
    monkeypatch.setattr(host_transfer, "spec_for", 
                        lambda device: spec_sheet(host_link="PCIe Gen5 x16", host_link_gbs=1e6))
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    assert result["status"] == "fail", result["message"]
    message = result["message"]
    assert "efficiency" in message and "1e+06 GB/s per direction (PCIe Gen5 x16)" in message, message
    assert "host-to-device" in message and "device-to-host" in message
    metrics = _metrics(result)
    for direction in ("h2d", "d2h"):
        efficiency = metrics[f"{direction}_efficiency"]
        assert 0 < efficiency["value"] < 0.25 and efficiency["threshold"] == 0.5


def test_copies_at_the_host_link_pass_and_a_middling_rate_warns(monkeypatch, spec_sheet):
    monkeypatch.setattr(host_transfer, "spec_for", 
                        lambda device: spec_sheet(host_link="PCIe Gen5 x16", host_link_gbs=1e-3))
    result = run_task(Task(CHECK, "cpu", "standard", params=SMALL))
    assert result["status"] == "pass", result["message"]
    assert _metrics(result)["h2d_efficiency"]["value"] > 1 and "efficiency against" in result["message"]

    measured = _metrics(result)["h2d_pageable_bandwidth"]["value"]
    monkeypatch.setattr(host_transfer, "spec_for", 
                        lambda device: spec_sheet(host_link="PCIe Gen5 x16", host_link_gbs=3 * measured))
    # Efficiency ~0.33 against wide limits, so a noisy machine still lands between fail and warn.
    result = run_task(Task(CHECK, "cpu", "standard",
                           params=SMALL | {"warn_efficiency": 0.9, "fail_efficiency": 0.01}))
    assert result["status"] == "warn", result["message"]
    assert "below 90%" in result["message"]
