"""environment.memory_alloc: the memory the device reports free can really be allocated, written and read back."""

from __future__ import annotations

import time

import torch

from acceldoctor.checks.context import CheckContext, CheckOutcome, SkipCheck
from acceldoctor.checks.environment._memory import GiB, MiB, flipped_bits, human_bytes, memory_info, release_cached
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.messages import describe_exception
from acceldoctor.report.model import Metric, Status

BASE_PATTERN = 0x5A5A_A5A5_3C3C_C3C3
CHUNK_STEP = 0x0101_0101_0101_0101  # each chunk gets its own pattern, so two chunks sharing memory show


@register_check(
    id="environment.memory_alloc",
    title="The free memory the device reports can be allocated, filled and read back",
    levels=("quick", "standard", "full"),
    timeout_s=300.0,
    params=(
        Param("fraction", 0.5, "Share of the reported free memory to allocate.",
              {"quick": 0.10, "full": 0.8}, minimum=0.001, maximum=0.95),
        Param("cpu_cap_mib", 2048, "On the cpu device (the host running the tool), never allocate more than this "
              "many MiB nor more than half of the available RAM, so the OOM killer is never invited.",
              {"quick": 256, "full": 8192}),
        Param("chunk_mib", 256, "Allocate in chunks of this many MiB, as real programs do."),
    ),
    doc=CheckDoc(
        verifies="Asks the device how much memory is free (`torch.<backend>.mem_get_info`, or MemAvailable for "
                 "the host), allocates a large share of it (10% at quick, 50% at standard, 80% at full; on the "
                 "cpu device capped so the host is never endangered) in chunks, writes a distinct 64-bit pattern "
                 "into every chunk, reads every chunk back after all are written, and frees it all again. On "
                 "accelerators it also checks that the memory is returned after freeing.",
        why="Jobs are sized from the free memory the runtime reports. Stacks have been seen reporting memory "
            "that cannot be allocated (fragmentation in the driver, memory held by a dead process, a wrong HBM "
            "size after a firmware update), handing out memory that silently aliases other memory, and not "
            "returning memory after it is freed; each surfaces much later as a mysterious out-of-memory or as "
            "corrupted activations.",
        failure_means="Either an allocation failed although the device had reported enough free memory (the "
                      "message gives the requested, allocated and reported-free amounts), or a chunk read back "
                      "different from what was written (the message gives the byte offset and the bits).",
        remedy="Look for other processes holding the device (`nvidia-smi`, `npu-smi info`, `rocm-smi`, "
               "`xpu-smi`); re-run after they exit. If it persists on an idle device, reset or reboot the node "
               "and run `environment.memory_pattern`; report the numbers to the vendor and drain the node.",
    ),
)
def check_memory_alloc(ctx: CheckContext) -> CheckOutcome:
    info = memory_info(ctx.device)
    if info is None:
        raise SkipCheck(f"cannot tell how much memory {ctx.device} has free, so there is nothing to check against")
    fraction = float(ctx.params["fraction"])
    target = int(info.free * fraction)
    if ctx.device.type == "cpu":
        target = min(target, int(ctx.params["cpu_cap_mib"]) * MiB, info.free // 2)
    chunk_bytes = int(ctx.params["chunk_mib"]) * MiB
    sizes = [chunk_bytes] * (target // chunk_bytes) + ([target % chunk_bytes] if target % chunk_bytes >= 8 else [])
    sizes = [s // 8 * 8 for s in sizes]
    if not sizes:
        raise SkipCheck(f"{ctx.device} reports only {human_bytes(info.free)} free; too little to test")
    requested = sum(sizes)
    metrics = [Metric(name="free_bytes_reported", value=info.free, unit="bytes"),
               Metric(name="total_bytes", value=info.total, unit="bytes")]
    chunks: list[torch.Tensor] = []
    try:
        start = time.perf_counter()
        for i, size in enumerate(sizes):
            try:
                chunk = torch.empty(size // 8, dtype=torch.int64, device=ctx.device)
                chunk.fill_(_pattern(i))
            except RuntimeError as exc:
                done = sum(sizes[:i])
                return CheckOutcome(Status.FAIL, (
                    f"allocating {human_bytes(requested)} ({fraction:.0%} of the {human_bytes(info.free)} that "
                    f"{info.source} reported free on {ctx.device}) failed at chunk {i + 1} of {len(sizes)} after "
                    f"{human_bytes(done)}: {describe_exception(exc)}."), metrics + [
                    Metric(name="allocated_bytes", value=done, unit="bytes"),
                    Metric(name="requested_bytes", value=requested, unit="bytes")])
            chunks.append(chunk)
        ctx.synchronize()
        fill_s = time.perf_counter() - start
        start = time.perf_counter()
        bad_chunks = torch.stack([chunk.ne(_pattern(i)).any() for i, chunk in enumerate(chunks)]).cpu()
        verify_s = time.perf_counter() - start
        corrupt = [_describe_corruption(chunks[i], i, chunk_bytes)
                   for i in torch.nonzero(bad_chunks).flatten().tolist()]
    finally:
        del chunks
        release_cached(ctx.device)
    metrics += [
        Metric(name="allocated_bytes", value=requested, unit="bytes"),
        Metric(name="fraction_of_free", value=requested / info.free, unit="ratio"),
        Metric(name="fill_rate", value=requested / fill_s / 1e9, unit="GB/s"),
        Metric(name="verify_rate", value=requested / verify_s / 1e9, unit="GB/s"),
    ]
    if corrupt:
        more = f" ({len(corrupt) - 1} more corrupted chunk(s))" if len(corrupt) > 1 else ""
        return CheckOutcome(Status.FAIL, f"memory read back differs from what was written: {corrupt[0]}{more}.",
                            metrics)
    summary = (f"allocated, filled and read back {human_bytes(requested)} ({requested / info.free:.0%} of the "
               f"{human_bytes(info.free)} reported free) in {len(sizes)} chunk(s) at {requested / fill_s / 1e9:.1f} "
               "GB/s")
    leak = _not_returned(ctx.device, info.free, requested)
    if leak:
        return CheckOutcome(Status.WARN, f"{summary}, but {leak}.", metrics)
    return CheckOutcome(Status.PASS, f"{summary}; every byte matched.", metrics)


def _pattern(chunk_index: int) -> int:
    value = (BASE_PATTERN ^ (chunk_index * CHUNK_STEP)) & (2**64 - 1)
    return value - 2**64 if value >= 2**63 else value  # as a signed int64


def _describe_corruption(chunk: torch.Tensor, index: int, chunk_bytes: int) -> str:
    expected = _pattern(index)
    wrong = torch.nonzero(chunk.ne(expected)).flatten()
    first = int(wrong[0])
    actual = int(chunk[first].item())
    bits = ", ".join(map(str, flipped_bits(expected, actual, 64)[:8]))
    offset = index * chunk_bytes + first * 8
    return (f"{wrong.numel()} of {chunk.numel()} 64-bit words in chunk {index + 1} are wrong, the first at byte "
            f"offset {offset} (0x{offset:x}) of the allocation: expected 0x{expected & (2**64 - 1):016x}, read "
            f"0x{actual & (2**64 - 1):016x} (bit{'s' if ',' in bits else ''} {bits} flipped)")


def _not_returned(device: torch.device, free_before: int, allocated: int) -> str | None:
    """On accelerators, memory that does not come back after freeing is a leak in the stack."""
    if device.type == "cpu":
        return None  # host RAM is shared with every other process; its free figure moves on its own
    after = memory_info(device)
    if after is None or after.free >= free_before - max(allocated // 2, GiB):
        return None
    return (f"after freeing, only {human_bytes(after.free)} is free again (was {human_bytes(free_before)}): memory "
            "was not returned to the device")

