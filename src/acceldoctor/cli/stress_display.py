"""What `acceldoctor stress` shows while it runs: a live table per device on a terminal, else a line per interval.

Per device: how far it is, each workload's rate now against its first interval, the errors found so far, and the
device's temperature, power, clock and throttling where it reports them.
"""

from __future__ import annotations

import statistics
import time

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

SHORT_NAMES = {"memory_soak": "memory", "train_loop": "train"}


def _rate(value: float, unit: str) -> str:
    return f"{value:.3g} {unit}"


def _telemetry_words(telemetry: dict) -> list[str]:
    words = []
    if "temperature_c" in telemetry:
        words.append(f"{telemetry['temperature_c']:.0f}°C")
    if "power_w" in telemetry:
        words.append(f"{telemetry['power_w']:.0f} W")
    if "clock_mhz" in telemetry:
        words.append(f"{telemetry['clock_mhz']:.0f} MHz")
    if telemetry.get("throttle"):
        words.append("throttled: " + ", ".join(telemetry["throttle"]))
    return words


START_INTERVALS = 5  # "start" is the median of this many first intervals: the very first one is often off


class DeviceState:
    def __init__(self) -> None:
        self.first: dict[str, list[float]] = {}  # each workload's rates in its first intervals
        self.last: dict = {}
        self.errors = 0

    def update(self, sample: dict) -> None:
        for name, part in sample.get("workloads", {}).items():
            first = self.first.setdefault(name, [])
            if len(first) < START_INTERVALS:
                first.append(part.get("rate", 0.0))
        self.errors += sample.get("wrong_elements", 0) + sample.get("nan_elements", 0)
        self.last = sample

    def rates(self) -> list[tuple[str, str]]:
        """(workload, "rate now (start)") per workload."""
        out = []
        for name, part in self.last.get("workloads", {}).items():
            now, unit = part.get("rate", 0.0), part.get("unit", "")
            start = statistics.median(self.first.get(name) or [now])
            out.append((SHORT_NAMES.get(name, name.removeprefix("gemm_")), f"{_rate(now, unit)} (start {start:.3g})"))
        return out


class StressDisplay:
    """Use as a context manager; `update(device, sample)` for every interval sample."""

    def __init__(self, devices: list[str], duration_s: float, console: Console, *, live: bool):
        self.devices = devices
        self.duration_s = duration_s
        self.console = console
        self.states = {d: DeviceState() for d in devices}
        self.begin = time.monotonic()
        self.live = Live(self._table(), console=console, refresh_per_second=2, transient=False) if live else None

    def __enter__(self) -> StressDisplay:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, device: str, sample: dict) -> None:
        state = self.states.setdefault(device, DeviceState())
        state.update(sample)
        if self.live is not None:
            self.live.update(self._table())
        else:
            self.console.print(escape(self.line(device)), highlight=False, soft_wrap=True)

    def line(self, device: str) -> str:
        state = self.states[device]
        rates = ", ".join(f"{name} {text}" for name, text in state.rates())
        errors = f"{state.errors} WRONG" if state.errors else "0 errors"
        telemetry = _telemetry_words(state.last.get("telemetry", {}))
        tail = f"; {' '.join(telemetry)}" if telemetry else ""
        return f"[{state.last.get('t_s', 0):>6.0f}/{self.duration_s:.0f} s] {device}: {rates}; {errors}{tail}"

    def _table(self) -> Table:
        elapsed = time.monotonic() - self.begin
        table = Table(title=f"acceldoctor stress: {elapsed:.0f} of {self.duration_s:.0f} s", expand=False)
        for column in ("device", "workload: rate now (start)", "errors", "telemetry"):
            table.add_column(column)
        for device, state in self.states.items():
            rates = "\n".join(f"{name}: {text}" for name, text in state.rates()) or "starting..."
            errors = f"[bold red]{state.errors}[/]" if state.errors else "0"
            telemetry = "\n".join(_telemetry_words(state.last.get("telemetry", {}))) or "-"
            table.add_row(escape(device), escape(rates), errors, escape(telemetry))
        return table
