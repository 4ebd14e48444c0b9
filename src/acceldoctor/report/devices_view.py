"""Render the device inventory for a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from acceldoctor.report.model import DeviceInfo, HostInfo


def _gib(n: int | None) -> str:
    return f"{n / 2**30:.1f} GiB" if n else "?"


def render_devices(host: HostInfo, devices: list[DeviceInfo], console: Console) -> None:
    stack = ", ".join(f"{k} {v}" for k, v in host.stack.items()) or "no accelerator stack"
    console.print(f"{host.hostname}: {host.os}, Python {host.python}, torch {host.torch}; {stack}")
    table = Table(expand=True)
    for column in ("device", "name", "vendor", "memory", "runtime", "driver"):
        table.add_column(column)
    for d in devices:
        table.add_row(d.id, d.name, d.vendor, _gib(d.memory_bytes), d.runtime_version or "—",
                      d.driver_version or "—")
    console.print(table)
