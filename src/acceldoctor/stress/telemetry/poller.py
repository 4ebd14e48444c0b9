"""Read a device's telemetry in a background thread, so a slow reader (npu-smi is a process per call, and a hung
driver makes it wait its timeout) never stalls the watchdog that keeps the burn honest."""

from __future__ import annotations

import threading

from acceldoctor.stress.telemetry.base import TelemetrySource


class TelemetryPoller:
    """Reads `source` every `every_s` seconds; `latest()` is the last complete reading as a timeline dict."""

    def __init__(self, source: TelemetrySource, every_s: float):
        self.source = source
        self.every_s = every_s
        self._latest: dict = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"telemetry-{source.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._latest = self.source.read().as_dict()  # one reference swap: readers see old or new, never half
            self._stop.wait(self.every_s)

    def latest(self) -> dict:
        return dict(self._latest)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.source.close()
