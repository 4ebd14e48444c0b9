"""The drift rule on synthetic throughput samples."""

import pytest

from acceldoctor.stress.drift import throughput_drift


def test_a_steady_device_has_no_drift_and_a_throttled_one_is_measured():
    steady = [(t, 1.0 + 0.01 * (t % 3)) for t in range(1, 121)]
    assert abs(throughput_drift(steady).change) < 0.03
    throttled = [(t, 1.0 if t <= 60 else 0.8) for t in range(1, 241)]
    drift = throughput_drift(throttled)
    assert drift.start_tflops == 1.0 and drift.end_tflops == 0.8 and drift.change == pytest.approx(-0.2)


def test_short_runs_compare_their_first_and_last_quarters_and_tiny_ones_nothing():
    samples = [(t, 2.0 if t <= 5 else 1.0) for t in range(1, 21)]
    assert throughput_drift(samples).change == pytest.approx(-0.5)
    assert throughput_drift(samples[:3]) is None
