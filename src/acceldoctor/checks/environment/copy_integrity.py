"""environment.copy_integrity: host<->device copies deliver every byte, pageable and pinned, odd sizes included."""

from __future__ import annotations

import statistics
import time

import torch

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.environment._memory import MiB, flipped_bits, human_bytes
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.report.model import Metric, Status

MISALIGN = 3  # odd sizes are copied from a source starting 3 bytes into its buffer


@register_check(
    id="environment.copy_integrity",
    title="Host-to-device and device-to-host copies deliver every byte (pageable and pinned, odd sizes)",
    levels=("quick", "standard", "full"),
    timeout_s=300.0,
    params=(
        Param("sizes", [1, 4097, MiB + 3, 16 * MiB, 128 * MiB + 1], "Copy sizes in bytes.",
              {"quick": [1, 4097, 16 * MiB + 1],
               "full": [1, 4097, MiB + 3, 16 * MiB, 128 * MiB + 1, 1024 * MiB + 7]}),
        Param("repeats", 3, "Timed round trips of the largest size, after one warm-up (each verified; throughput "
              "is their median).",
              {"full": 5}),
    ),
    doc=CheckDoc(
        verifies="Copies random bytes host -> device -> host and compares every byte with the original: sizes "
                 "of 1 byte, 4097 bytes (one past a page), odd sizes from a misaligned source, and large "
                 "buffers (16 MiB at quick, up to 128 MiB at standard, 1 GiB at full); from pageable host "
                 "memory and, where the device has it, from pinned memory with `non_blocking=True` followed by "
                 "a synchronize; plus a device-to-device clone. Reports the copy throughput of the largest size "
                 "per direction and memory kind (median of the round trips). On the cpu device the device "
                 "buffer is a separate host buffer, so the same copies run as plain memory copies.",
        why="Every batch enters the device and every checkpoint leaves it through these copies. DMA engines "
            "and driver copy paths have shipped bugs for sizes that are not a multiple of the transfer unit, "
            "for misaligned sources, and for asynchronous copies from pinned memory; PCIe links with bad lanes "
            "corrupt or slow transfers. A corrupted input batch or checkpoint is silent and hard to trace back.",
        failure_means="Some byte arrived different from what was sent. The message names the direction "
                      "(host-to-device, device-to-host or device-to-device), the memory kind, the size, the "
                      "first wrong byte offset, the expected and actual byte and the flipped bits.",
        remedy="Re-run to see whether it repeats at the same offset (a deterministic driver bug) or moves "
               "(link or memory). Check the PCIe link width and speed (`lspci -vv`, `nvidia-smi -q`), "
               "reseat the card or try another slot, update the driver, and report the size and memory kind "
               "to the vendor.",
    ),
)
def check_copy_integrity(ctx: CheckContext) -> CheckOutcome:
    sizes = sorted(int(s) for s in ctx.params["sizes"])
    kinds = ["pageable"] + (["pinned"] if _has_pinned_memory(ctx.device) else [])
    gen = ctx.generator()
    failures: list[str] = []
    timings: dict[str, list[float]] = {}
    checked = 0
    for size in sizes:
        source = _random_bytes(size, gen)
        # the largest size is timed: one warm-up round trip, then `repeats` timed ones; all are verified
        rounds = 1 + int(ctx.params["repeats"]) if size == sizes[-1] else 1
        for kind in kinds:
            trip = _RoundTrip(ctx, source, kind)
            for r in range(rounds):
                problem, up_s, down_s = trip.run()
                checked += size
                if problem:
                    failures.append(problem)
                    break
                if r:
                    timings.setdefault(f"h2d_{kind}", []).append(size / up_s / 1e9)
                    timings.setdefault(f"d2h_{kind}", []).append(size / down_s / 1e9)
            else:
                if problem := trip.device_to_device():
                    failures.append(problem)
            del trip
        del source
    metrics = [Metric(name="bytes_checked", value=checked, unit="bytes"),
               Metric(name="wrong_copies", value=len(failures), unit="count", threshold=0)]
    metrics += [Metric(name=f"{name}_throughput", value=statistics.median(rates), unit="GB/s")
                for name, rates in timings.items()]
    if failures:
        more = f" ({len(failures) - 1} more wrong copies)" if len(failures) > 1 else ""
        return CheckOutcome(Status.FAIL, f"{failures[0]}{more}.", metrics)
    rates = ", ".join(f"{name.replace('_', ' ')} {statistics.median(r):.1f} GB/s" for name, r in timings.items())
    pinned = "" if "pinned" in kinds else " (no pinned memory on this device; pageable only)"
    return CheckOutcome(Status.PASS, (
        f"{len(sizes)} sizes from {human_bytes(sizes[0])} to {human_bytes(sizes[-1])} went host -> {ctx.device} -> "
        f"host and device -> device intact{pinned}; {rates}."), metrics)


class _RoundTrip:
    """Buffers for sending `source` to the device and back, allocated once and reused by every round."""

    def __init__(self, ctx: CheckContext, source: torch.Tensor, kind: str):
        self.ctx, self.source, self.pinned = ctx, source, kind == "pinned"
        size = source.numel()
        self.host = source
        if self.pinned:
            self.host = torch.empty(size + MISALIGN, dtype=torch.uint8, pin_memory=True)[MISALIGN:]
            self.host.copy_(source)
        self.on_device = torch.empty(size, dtype=torch.uint8, device=ctx.device)
        self.back = torch.empty(size, dtype=torch.uint8, pin_memory=self.pinned)
        self.what = f"{human_bytes(size)} ({size} bytes) from {kind} memory"

    def run(self) -> tuple[str | None, float, float]:
        """One round trip; returns (what went wrong or None, seconds up, seconds down)."""
        # Stale contents must not pass for a copy: overwrite both destinations first.
        self.on_device.fill_(0x5A)
        self.back.fill_(0xA5)
        self.ctx.synchronize()
        start = time.perf_counter()
        self.on_device.copy_(self.host, non_blocking=self.pinned)
        self.ctx.synchronize()
        middle = time.perf_counter()
        self.back.copy_(self.on_device, non_blocking=self.pinned)
        self.ctx.synchronize()
        up_s, down_s = middle - start, time.perf_counter() - middle
        if torch.equal(self.back, self.source):
            return None, up_s, down_s
        wrong = self.back.ne(self.source)
        first = int(torch.nonzero(wrong)[0])
        expected = int(self.source[first])
        # Read the device's byte alone (a different, tiny copy) to tell which direction broke.
        direction = "host-to-device" if int(self.on_device[first].item()) != expected else "device-to-host"
        return _describe(f"{direction} copy of {self.what}", first, expected, int(self.back[first]),
                         int(wrong.sum())), up_s, down_s

    def device_to_device(self) -> str | None:
        clone = self.on_device.clone()
        if torch.equal(clone, self.on_device):
            return None
        wrong = clone.ne(self.on_device)
        first = int(torch.nonzero(wrong)[0])
        return _describe(f"device-to-device copy of {self.what}", first, int(self.on_device[first].item()),
                         int(clone[first].item()), int(wrong.sum()))


def _describe(what: str, offset: int, expected: int, actual: int, count: int) -> str:
    bits = flipped_bits(expected, actual, 8)
    return (f"{what}: byte {offset} (0x{offset:x}) is 0x{actual:02x} but should be 0x{expected:02x} "
            f"(bit{'s' if len(bits) > 1 else ''} {', '.join(map(str, bits))} flipped; {count} byte(s) wrong)")


def _random_bytes(size: int, gen: torch.Generator) -> torch.Tensor:
    """`size` random bytes; all but the smallest start MISALIGN bytes into their buffer (a misaligned source)."""
    offset = MISALIGN if size > 1 else 0
    words = torch.empty((size + offset) // 8 + 1, dtype=torch.int64).random_(-2**63, None, generator=gen)
    return words.view(torch.uint8)[offset: offset + size]


def _has_pinned_memory(device: torch.device) -> bool:
    if device.type == "cpu":
        return False  # no separate device memory to stage for
    try:
        return torch.empty(1, pin_memory=True).is_pinned()
    except (RuntimeError, NotImplementedError):
        return False
