"""Statistics of one tensor, computed on the tensor's own device without waiting for it.

`queue_stats(t)` launches a handful of reductions and returns a handle holding small device tensors (or, on the CPU,
numbers already known); `materialize(handle)` — called later by the dump's writer thread — turns the handle into
the numbers of a record: min, max, mean, l2 (the Euclidean norm), nan and inf (element counts) and checksum.

The checksum is a position-weighted sum of the elements' bit patterns modulo 2**32, `sum(bits[i] * w[i])`, with
odd pseudo-random weights w fixed by position in the tensor's logical (row-major) order (not its memory layout).
A single changed element always changes it (odd weights); other differences, swapped elements included, go
unnoticed with a chance of about 1 in 2**32 — so equal checksums of equal-shaped tensors mean bit-identical tensors
almost surely. Integer arithmetic wraps identically in any reduction order, so the same bits give the same checksum
on every device. It is written as 8 hex digits.
"""

from __future__ import annotations

import math
from typing import Any

import torch

# Dtypes the reductions accept directly; others (the float8 family) are widened to float32 first.
_NATIVE = {torch.float16, torch.bfloat16, torch.float32, torch.float64}
_BLAS = {torch.float32, torch.float64}
# The weight table covers tensors up to this many elements; longer tensors reuse it period by period.
_WEIGHT_PERIOD = 1 << 22


# Statistics queued on a device: (numel, (min, max, sum, l2), (nan, inf, checksum)), each item a number or a 0-d
# tensor (on an accelerator: one stacked tensor per triple) until the writer thread materializes them.
PendingStats = tuple

_EMPTY_STATS = {"min": None, "max": None, "mean": None, "l2": 0.0, "nan": 0, "inf": 0, "checksum": "00000000"}
_CACHE_LIMIT = 512


class _Weights:
    """The checksum's position weights: one table per device, built once and grown on demand, and views of it
    cached per shape (slicing a tensor costs more than the reduction itself on small tensors)."""

    def __init__(self):
        self._tables: dict[torch.device, torch.Tensor] = {}
        self._views: dict[tuple, torch.Tensor] = {}
        self._flat_cpu: dict[int, torch.Tensor] = {}

    def table(self, device: torch.device, numel: int) -> torch.Tensor:
        table = self._tables.get(device)
        if table is None or table.numel() < min(numel, _WEIGHT_PERIOD):
            size = min(_WEIGHT_PERIOD, 1 << max(12, (numel - 1).bit_length()))
            table = self._tables[device] = _weight_table(size).to(device)
            self._views.clear()
            self._flat_cpu.clear()
        return table

    def shaped(self, device: torch.device, shape: torch.Size) -> torch.Tensor:
        """Weights laid out like a tensor of this shape (numel at most the period)."""
        key = (device, shape)
        view = self._views.get(key)
        if view is None:
            if len(self._views) >= _CACHE_LIMIT:
                self._views.clear()
            numel = shape.numel()
            view = self._views[key] = self.table(device, numel).narrow(0, 0, numel).view(shape)
        return view

    def flat_cpu(self, numel: int) -> torch.Tensor:
        view = self._flat_cpu.get(numel)
        if view is None:
            if len(self._flat_cpu) >= _CACHE_LIMIT:
                self._flat_cpu.clear()
            view = self.table(torch.device("cpu"), numel).narrow(0, 0, numel)
            self._flat_cpu[numel] = view
        return view


def _weight_table(size: int) -> torch.Tensor:
    # Odd multipliers from a Weyl sequence (golden-ratio increment), computed in int64 on the CPU and wrapped into
    # int32 by hand so the table is the same on every device.
    positions = torch.arange(size, dtype=torch.int64)
    weights = (positions * 0x9E3779B1 + 0x7F4A7C15) % (1 << 32) | 1
    return torch.where(weights >= 1 << 31, weights - (1 << 32), weights).to(torch.int32)


_weights = _Weights()

# Two fixed random-sign projections of every tensor, Σ s_i x_i with s_i = ±1 from the checksum weights' bits 1 and
# 2: for two recordings a and b, Σ s_i (a_i - b_i) has expected square ‖a - b‖², so two projections estimate the
# size of a difference that min, max, mean and norm cannot see (independent rounding errors, one changed element).
PROJECTIONS = 2
_sign_tables: dict[tuple, torch.Tensor] = {}


def _signs(device: torch.device, numel: int, dtype: torch.dtype) -> torch.Tensor:
    """A (PROJECTIONS, numel) table of ±1 for positions 0..numel-1 (periodic beyond the weight table)."""
    key = (device, numel, dtype)
    table = _sign_tables.get(key)
    if table is None:
        if len(_sign_tables) >= _CACHE_LIMIT:
            _sign_tables.clear()
        period = _weight_table(min(numel, _WEIGHT_PERIOD)).to(torch.int64)
        weights = period.repeat(-(-numel // period.numel()))[:numel]
        bits = torch.stack([(weights >> (1 + j)) & 1 for j in range(PROJECTIONS)])
        table = _sign_tables[key] = (bits * 2 - 1).to(device=device, dtype=dtype)
    return table


def _projections(values: torch.Tensor, accumulate: torch.dtype) -> torch.Tensor:
    # A product then a sum, not a matrix-vector product: torch's sums add pairwise (about 1 epsilon of error on a
    # million elements, measured), BLAS's gemv in long runs (about 100): two runs that add in different orders must
    # not differ by their own rounding. It costs about as much as the norm and the checksum together.
    flat = values.reshape(1, -1)
    return (flat * _signs(flat.device, flat.shape[1], flat.dtype)).sum(dim=1, dtype=accumulate)


def _checksum(t: torch.Tensor) -> torch.Tensor:
    """Position-weighted sum of t's bit patterns (32-bit words for 8-byte dtypes), wrapped to 32 bits: a 0-d
    int32 tensor on t's device."""
    size = t.element_size()
    if size == 4 and t.is_cpu and t.is_contiguous() and t.numel() <= _WEIGHT_PERIOD:
        # One pass, no temporary: the CPU's integer dot wraps like the sum below (GPUs have no integer dot).
        return torch.dot(t.view(-1).view(torch.int32), _weights.flat_cpu(t.numel()))
    return portable_checksum(t)


def portable_checksum(t: torch.Tensor) -> torch.Tensor:
    """The checksum by elementwise products and an integer sum: what every device can do (and what an accelerator
    computes: the tests hold it equal to the CPU's dot)."""
    if t.stride() and t.stride(-1) != 1:  # a view of another element size needs unit stride (expanded tensors)
        t = t.contiguous()
    size = t.element_size()
    if size == 4:
        bits = t.view(torch.int32)
    elif size == 2:
        bits = t.view(torch.int16)  # times int32 weights: the products are int32
    elif size == 8:
        bits = t.contiguous().reshape(-1).view(torch.int32)  # both halves of each element count
    else:
        bits = t.view(torch.uint8).to(torch.int32)
    numel = bits.numel()
    if numel > _WEIGHT_PERIOD:
        # Longer than the table: whole periods as rows of a matrix, then the tail.
        table = _weights.table(t.device, numel)
        flat = bits.reshape(-1)
        whole = numel - numel % _WEIGHT_PERIOD
        total = (flat[:whole].view(-1, _WEIGHT_PERIOD) * table).sum(dtype=torch.int32)
        if whole < numel:
            total = total + (flat[whole:] * table[: numel - whole]).sum(dtype=torch.int32)
        return total
    return (bits * _weights.shaped(t.device, bits.shape)).sum(dtype=torch.int32)



def queue_stats(t: torch.Tensor) -> PendingStats:
    """Launch t's statistics on its device; no transfer, no synchronisation (on the CPU the numbers are ready).

    Call with autograd off (torch.no_grad) or below autograd (in a dispatch mode): the reductions must not join
    the graph.
    """
    if t.numel() == 0:
        return 0, None, None
    return _cpu_stats(t) if t.is_cpu else queue_device_stats(t)


def _values(t: torch.Tensor) -> tuple[torch.Tensor, torch.dtype]:
    """t in a dtype the reductions take, and the dtype to accumulate in."""
    return (t if t.dtype in _NATIVE else t.float()), (torch.float64 if t.dtype == torch.float64 else torch.float32)


def _cpu_stats(t: torch.Tensor) -> PendingStats:
    values, accumulate = _values(t)
    low, high = torch.aminmax(values)
    total = values.sum(dtype=accumulate)
    checksum = _checksum(t)
    if t.dtype in _BLAS and t.is_contiguous():
        flat = t.view(-1)
        norm = math.sqrt(torch.dot(flat, flat).item())  # BLAS: faster than vector_norm on the CPU
    else:
        norm = torch.linalg.vector_norm(values, dtype=accumulate).item()
    # Reading a CPU scalar waits for nothing. A finite norm means no NaN and no Inf, which spares the two counting
    # passes on almost every tensor.
    nan = inf = 0
    if not math.isfinite(norm):
        norm = torch.linalg.vector_norm(values, dtype=accumulate).item()  # as torch reports it (dot may overflow)
        nan, inf = torch.isnan(values).sum().item(), torch.isinf(values).sum().item()
    projections = _projections(values, accumulate).tolist()
    return t.numel(), (low.item(), high.item(), total.item(), norm, *projections), (nan, inf, checksum.item())


def queue_device_stats(t: torch.Tensor) -> PendingStats:
    """The accelerator path (it runs on any device; the CPU takes the faster path above): branching on the norm
    would wait for the device, so NaN and Inf are counted unconditionally, and the scalars are stacked so that the
    writer thread makes two small transfers."""
    values, accumulate = _values(t)
    low, high = torch.aminmax(values)
    projections = _projections(values, accumulate)
    floats = torch.cat([torch.stack([low.to(accumulate), high.to(accumulate), values.sum(dtype=accumulate),
                                     torch.linalg.vector_norm(values, dtype=accumulate)]).to(projections.dtype),
                        projections])
    counts = torch.stack([torch.isnan(values).sum(), torch.isinf(values).sum(), _checksum(t).to(torch.int64)])
    return t.numel(), floats, counts


def materialize(pending: PendingStats) -> dict[str, Any]:
    """The record's `stats` object (floats may be NaN or infinite here; dump.encode_stats makes them JSON)."""
    numel, values, counts = pending
    if numel == 0:
        return dict(_EMPTY_STATS)
    if isinstance(values, torch.Tensor):  # queued on a device: this is where the writer thread waits for it
        values, counts = values.tolist(), counts.tolist()
    low, high, total, l2, *projections = values
    nan, inf, checksum = counts
    return {"min": float(low), "max": float(high), "mean": float(total) / numel, "l2": float(l2),
            "nan": int(nan), "inf": int(inf), "checksum": f"{int(checksum) & 0xFFFFFFFF:08x}",
            "proj": [float(x) for x in projections]}


def tensor_stats(t: torch.Tensor) -> dict[str, Any]:
    """A tensor's statistics right away (for tests and one-off use)."""
    with torch.no_grad():
        return materialize(queue_stats(t.detach()))
