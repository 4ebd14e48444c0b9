import time

import torch

from acceldoctor.checks.performance._timing import Measurement, measure


def test_measurement_reports_median_and_spread_not_a_single_timing():
    m = Measurement(times=(1.0, 2.0, 3.0, 4.0, 100.0), calls_per_repeat=1)
    assert m.median == 3.0
    assert 0 < m.iqr < 97  # the outlier does not dominate the spread
    assert m.rate(6.0) == 2.0


def test_measure_times_work_on_the_cpu_and_batches_short_calls():
    m = measure(lambda: time.sleep(0.002), torch.device("cpu"), warmup=1, repeats=5, min_repeat_s=0.01)
    assert len(m.times) == 5
    assert m.calls_per_repeat >= 4  # 2 ms calls were batched up to at least 10 ms per repeat
    assert m.median >= 0.002  # never less than the sleep itself
