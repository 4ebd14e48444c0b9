"""The background telemetry reader: no Xid event is lost or counted twice between samples, and a reader that
raises costs one reading, not the thread."""

import time

from acceldoctor.devices.telemetry.base import TelemetrySample, TelemetrySource
from acceldoctor.devices.telemetry.poller import TelemetryPoller


class _Source(TelemetrySource):
    name = "fake"

    def __init__(self):
        self.reads = 0
        self.closed = False

    def read(self):
        self.reads += 1
        if self.reads == 2:
            raise RuntimeError("driver hiccup")
        return TelemetrySample(temperature_c=50.0 + self.reads, xid=[79] if self.reads in (3, 4) else [])

    def close(self):
        self.closed = True


def _wait_for(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        time.sleep(0.01)


def test_events_of_several_reads_between_two_samples_all_reach_the_next_sample_once():
    source = _Source()
    poller = TelemetryPoller(source, 0.01, time.monotonic())
    _wait_for(lambda: source.reads >= 6)
    poller.close()
    assert source.closed
    merged = poller.take_new()
    assert merged["xid"] == [79] and merged["temperature_c"] > 53  # the latest temperature, every event once
    assert poller.take_new() == {}  # nothing new: the next sample gets no stale events
    readings = poller.readings()
    assert sum(79 in r.get("xid", []) for r in readings) == 2  # both reads that saw it, for the judge
    assert all("t_s" in r for r in readings)
