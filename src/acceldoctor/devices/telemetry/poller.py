"""Read a device's telemetry in a background thread, so a slow reader (npu-smi is a process per call, and a hung
driver makes it wait its timeout) never stalls the watchdog that keeps the burn honest.

Every reading is kept with its time: event readings (Xid, error codes) are drained by each read, so dropping one
would lose an event, and the judge must see the readings taken while a device hung, when no sample came.
"""

from __future__ import annotations

import threading
import time


class TelemetryPoller:
    """Reads `source` every `every_s` seconds from `begin` (a time.monotonic() value) on."""

    def __init__(self, source, every_s: float, begin: float):
        self.source = source
        self.every_s = every_s
        self.begin = begin
        self._readings: list[dict] = []
        self._taken = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"telemetry-{source.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._read_once()
            self._stop.wait(self.every_s)
        self._read_once()  # a last drain: events up to the end of the run

    def _read_once(self) -> None:
        try:
            reading = self.source.read().as_dict()
        except Exception:  # a reader must never raise; if one does, this reading is missing, not the thread
            return
        if reading:
            with self._lock:
                self._readings.append({**reading, "t_s": round(time.monotonic() - self.begin, 3)})

    def take_new(self) -> dict:
        """The readings since the last call merged into one (the latest values, every event and throttle reason
        seen), for the timeline sample of the interval that just ended; {} when there were none."""
        with self._lock:
            new, self._taken = self._readings[self._taken:], len(self._readings)
        if not new:
            return {}
        merged = {k: v for k, v in new[-1].items() if k != "t_s"}
        for key in ("xid", "throttle"):
            values = [v for r in new for v in r.get(key) or []]
            if values or key in merged:
                merged[key] = list(dict.fromkeys(values))
        return merged

    def readings(self) -> list[dict]:
        with self._lock:
            return list(self._readings)

    def stop(self) -> None:
        self._stop.set()

    def close(self, wait_s: float = 2.0) -> None:
        """Stop (if not yet), wait a little for the thread, and release the reader once the thread is done."""
        self._stop.set()
        self._thread.join(timeout=wait_s)
        if not self._thread.is_alive():
            self.source.close()
