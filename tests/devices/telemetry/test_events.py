"""`stability.telemetry` judged from per-interval telemetry as the stress timeline holds it."""

from __future__ import annotations

import sys

from acceldoctor.devices.telemetry import open_telemetry
from acceldoctor.devices.telemetry.events import judge_telemetry
from acceldoctor.devices.telemetry.readers import CPU_REASON
from acceldoctor.report.model import Status


def steady(n: int = 6, **extra) -> list[dict]:
    return [{"t_s": 10.0 * (i + 1), "temperature_c": 60 + i, "power_w": 300.0 + i, "clock_mhz": 1980 - 10 * i,
             "throttle": [], "ecc_uncorrected": 0, "ecc_corrected": 7, "xid": [], "health": "OK", **extra}
            for i in range(n)]


def metric(outcome, name):
    return next(m.value for m in outcome.metrics if m.name == name)


def test_a_healthy_run_passes_with_its_hottest_reading_and_clock_range():
    outcome = judge_telemetry("cuda:0", steady())
    assert outcome.status is Status.PASS
    assert "65 °C" in outcome.message and "305 W" in outcome.message and "1930-1980 MHz" in outcome.message
    assert metric(outcome, "max_temperature") == 65 and metric(outcome, "throttled_share") == 0
    assert metric(outcome, "min_clock") == 1930 and metric(outcome, "new_ecc_uncorrected") == 0


def test_heat_holding_the_clocks_back_in_several_intervals_warns_with_the_reasons_and_share():
    samples = steady(4)
    samples[1]["throttle"] = ["hardware thermal slowdown"]
    samples[2]["throttle"] = ["software power cap", "hardware thermal slowdown"]
    outcome = judge_telemetry("cuda:1", samples)
    assert outcome.status is Status.WARN
    assert "hardware thermal slowdown" in outcome.message and "software power cap" in outcome.message
    assert "50%" in outcome.message and "at 20 s" in outcome.message
    assert metric(outcome, "throttled_share") == 0.5


def test_a_clock_setting_or_a_single_throttled_interval_is_not_a_problem():
    samples = steady(4, throttle=["applications clocks setting"])
    samples[3]["throttle"] = ["hardware slowdown"]
    assert judge_telemetry("cuda:0", samples).status is Status.PASS


def test_a_new_uncorrectable_ecc_error_fails_and_says_when():
    samples = steady(5, ecc_uncorrected=2)  # errors from before the run are not the run's
    samples[3]["ecc_uncorrected"] = samples[4]["ecc_uncorrected"] = 3
    outcome = judge_telemetry("cuda:0", samples)
    assert outcome.status is Status.FAIL
    assert "1 new uncorrectable memory (ECC) error" in outcome.message and "at 40 s" in outcome.message
    assert metric(outcome, "new_ecc_uncorrected") == 1


def test_an_xid_fails_naming_it_and_when():
    samples = steady(3)
    samples[2]["xid"] = [79]
    outcome = judge_telemetry("cuda:0", samples)
    assert outcome.status is Status.FAIL and "Xid 79 at 30 s" in outcome.message
    assert metric(outcome, "error_events") == 1


def test_an_unhealthy_device_fails_even_without_timestamps():
    samples = [{"temperature_c": 50, "health": "OK"}, {"temperature_c": 52, "health": "Alarm",
                                                       "xid": ["80E18005"]}]
    outcome = judge_telemetry("npu:0", samples)
    assert outcome.status is Status.FAIL
    assert 'health "Alarm" in interval 2' in outcome.message and "error code 80E18005" in outcome.message


def test_no_telemetry_is_a_skip_with_the_plain_reason():
    outcome = judge_telemetry("cpu", [{"t_s": 1.0}, {}, None], CPU_REASON)
    assert outcome.status is Status.SKIP and CPU_REASON in outcome.message
    assert judge_telemetry("cuda:0", []).status is Status.SKIP


def test_devices_without_a_reader_get_a_one_sentence_reason(monkeypatch):
    assert open_telemetry("cpu") == (None, CPU_REASON)
    assert open_telemetry("xpu:0")[0] is None and "xpu-smi" in open_telemetry("xpu:0")[1]
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setitem(sys.modules, "amdsmi", None)
    source, reason = open_telemetry("cuda:0")
    assert source is None and "nvidia-ml-py" in reason and "amdsmi" in reason
