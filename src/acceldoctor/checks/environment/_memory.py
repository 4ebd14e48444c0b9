"""How much memory a device has free, device-agnostically, and small helpers the memory checks share."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class MemoryInfo:
    free: int
    total: int
    source: str  # where the numbers came from, for messages


def memory_info(device: torch.device) -> MemoryInfo | None:
    """Free and total bytes of `device` (the host's RAM for `cpu`), or None when nobody can tell."""
    if device.type == "cpu":
        return _host_memory()
    backend = getattr(torch, device.type, None)
    mem_get_info = getattr(backend, "mem_get_info", None)  # torch.cuda (also ROCm), torch.xpu, torch.npu
    if mem_get_info is not None:
        try:
            free, total = mem_get_info(device)
            return MemoryInfo(int(free), int(total), f"torch.{device.type}.mem_get_info")
        except (RuntimeError, TypeError, AssertionError):
            pass
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "get_memory_info"):
        try:
            free, total = accelerator.get_memory_info(device)
            return MemoryInfo(int(free), int(total), "torch.accelerator.get_memory_info")
        except (RuntimeError, TypeError, ValueError, AssertionError):
            pass
    if device.type == "mps":
        total = int(torch.mps.recommended_max_memory())
        return MemoryInfo(max(total - int(torch.mps.driver_allocated_memory()), 0), total,
                          "torch.mps.recommended_max_memory")
    return None


def _host_memory() -> MemoryInfo | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh if line.split()[1:]}
        return MemoryInfo(fields["MemAvailable"], fields["MemTotal"], "MemAvailable in /proc/meminfo")
    except (OSError, KeyError, ValueError, IndexError):
        pass
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return MemoryInfo(os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page,
                          "sysconf(SC_AVPHYS_PAGES)")
    except (ValueError, OSError, AttributeError):
        return None


def release_cached(device: torch.device) -> None:
    """Give memory held by the framework's caching allocator back to the device."""
    backend = getattr(torch, device.type, None)
    empty_cache = getattr(backend, "empty_cache", None) if device.type != "cpu" else None
    if empty_cache is not None:
        empty_cache()


def human_bytes(n: float) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def flipped_bits(expected: int, actual: int, width: int) -> list[int]:
    """Bit positions (0 = least significant) where two `width`-bit words differ."""
    diff = (expected ^ actual) & ((1 << width) - 1)
    return [bit for bit in range(width) if diff >> bit & 1]
