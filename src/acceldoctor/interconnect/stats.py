"""Bandwidth arithmetic for collectives, following nccl-tests (doc/PERFORMANCE.md in NVIDIA/nccl-tests).

Byte convention ("size"), per op, exactly as nccl-tests counts it:
- all_reduce:     bytes of the buffer on one rank (input = output size).
- all_gather:     bytes of the gathered OUTPUT on one rank (n x each rank's input).
- reduce_scatter: bytes of the INPUT on one rank (n x each rank's output).
- all_to_all:     bytes one rank sends in total (= bytes it receives), n chunks of size/n.
- broadcast:      bytes of the buffer.
- send_recv:      bytes one rank sends to its neighbour (and receives from the other one).

algbw = size / time. busbw = algbw x factor, where the factor makes the figure comparable to the link's
hardware bandwidth whatever the rank count: all_reduce 2(n-1)/n, all_gather / reduce_scatter /
all_to_all (n-1)/n, broadcast and send_recv 1. Gigabytes are 10^9 bytes, as in nccl-tests.
"""

from __future__ import annotations

OPS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all", "send_recv")

# Ops whose size is split into one chunk per rank, so the element count must be a multiple of n.
CHUNKED_OPS = frozenset({"all_gather", "reduce_scatter", "all_to_all"})

GB = 1e9


def bus_factor(op: str, world_size: int) -> float:
    """nccl-tests' busbw / algbw ratio for `op` over `world_size` ranks."""
    n = world_size
    if op == "all_reduce":
        return 2 * (n - 1) / n
    if op in CHUNKED_OPS:
        return (n - 1) / n
    if op in ("broadcast", "send_recv"):
        return 1.0
    raise ValueError(f"unknown collective {op!r}; expected one of {', '.join(OPS)}")


def algbw_gbps(size_bytes: int, seconds: float) -> float:
    """Algorithm bandwidth in GB/s (10^9 bytes per second)."""
    return size_bytes / seconds / GB if seconds > 0 else float("inf")


def busbw_gbps(op: str, size_bytes: int, seconds: float, world_size: int) -> float:
    """Bus bandwidth in GB/s: algbw scaled by the op's factor."""
    return algbw_gbps(size_bytes, seconds) * bus_factor(op, world_size)


def elements_for(op: str, size_bytes: int, element_size: int, world_size: int) -> int:
    """Element count (in the op's byte convention) nearest below `size_bytes`; at least one per rank chunk."""
    elements = max(1, size_bytes // element_size)
    if op in CHUNKED_OPS:
        elements = max(world_size, elements - elements % world_size)
    return elements


def size_sweep(min_bytes: int, max_bytes: int, *, free_memory_bytes: int | None = None,
               buffers: int = 4, memory_fraction: float = 0.5, time_budget_s: float | None = None,
               bytes_per_second: float | None = None, iterations: int = 20) -> list[int]:
    """Powers of two from `min_bytes` up to `max_bytes`, bounded by memory and time.

    `buffers` is how many buffers of `size` one measurement holds at once (input, output, expected,
    spare copy); sizes stop where they would take more than `memory_fraction` of `free_memory_bytes`.
    With a time budget and an estimate of the achieved `bytes_per_second` (e.g. from a small size), sizes
    stop where the running total of `iterations` x size / bandwidth would pass the budget.
    """
    if min_bytes <= 0 or max_bytes < min_bytes:
        raise ValueError(f"need 0 < min_bytes <= max_bytes, got {min_bytes}, {max_bytes}")
    size = 1 << (min_bytes - 1).bit_length()  # first power of two >= min_bytes
    sizes: list[int] = []
    spent_s = 0.0
    while size <= max_bytes:
        if free_memory_bytes is not None and buffers * size > memory_fraction * free_memory_bytes:
            break
        if time_budget_s is not None and bytes_per_second:
            spent_s += iterations * size / bytes_per_second
            if spent_s > time_budget_s and sizes:
                break
        sizes.append(size)
        size *= 2
    return sizes
