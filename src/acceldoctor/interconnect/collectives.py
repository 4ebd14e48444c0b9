"""Time one collective inside an initialized torch.distributed process group and check every result bit-exactly.

Every rank calls `measure_collective` with the same arguments (as with any collective). Inputs are small
integers, exact in the dtype, so the expected output is known exactly. The probe call, the warm-ups but the
last, and the last timed call are checked (a check just before a timed call would slow that call), and
wrong elements are attributed to the rank they came from:
- all_gather, all_to_all, send_recv, broadcast: by position (each output chunk has one source rank), and the
  values carry the source rank too, so a chunk delivered to the wrong place is wrong.
- all_reduce, reduce_scatter: rank r contributes v_i << (B*r) (B = field bits; v_i odd, B bits), so a
  missing or doubled contribution changes the sum by exactly +-v_i << (B*r) and decodes to rank r. Any
  other error cannot be attributed from a sum (a +1 looks the same whoever added it) and is counted as
  unattributed on the receiving rank. With too many ranks for the dtype's exact integers (B < 2) nothing
  is attributed.
Times are host clock around a synchronized call after the ranks are aligned by a tiny all_reduce, so a
rank's time does not include waiting for a late peer; the reported time of an iteration is the slowest
rank's. Results are exchanged with all_gather_object, so every rank returns the same result (on NCCL-like
backends the caller must have set the current device first, as all_gather_object requires).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from acceldoctor.checks.performance._timing import Measurement
from acceldoctor.devices.backends import synchronize
from acceldoctor.interconnect import stats

# What a backend raises for an op it does not implement (DistBackendError is a RuntimeError).
_BACKEND_ERRORS = (RuntimeError, NotImplementedError, ValueError, TypeError)


@dataclass(frozen=True)
class RankOutcome:
    """One rank's view: its own times and the wrong elements it received, over `checked_calls` calls."""

    rank: int
    times_s: tuple[float, ...]
    checked_calls: int
    wrong_elements: int
    wrong_by_source: dict[int, int]  # source rank -> wrong elements attributed to it
    unattributed: int


@dataclass(frozen=True)
class CollectiveResult:
    op: str
    implementation: str  # the torch.distributed call used, e.g. "all_gather_single" or "all_gather" (list)
    backend: str
    world_size: int
    dtype: str
    size_bytes: int  # in nccl-tests' convention for the op (see stats)
    elements: int
    unsupported_reason: str  # empty when the backend ran the op
    ranks: tuple[RankOutcome, ...]
    times_s: tuple[float, ...]  # per timed iteration, the slowest rank's time

    @property
    def supported(self) -> bool:
        return not self.unsupported_reason

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s) if self.times_s else float("nan")

    @property
    def relative_iqr(self) -> float:
        return Measurement(self.times_s, 1).relative_spread if self.times_s else float("nan")

    @property
    def algbw_gbps(self) -> float:
        return stats.algbw_gbps(self.size_bytes, self.median_s) if self.times_s else 0.0

    @property
    def busbw_gbps(self) -> float:
        return self.algbw_gbps * stats.bus_factor(self.op, self.world_size)

    @property
    def wrong_elements(self) -> int:
        return sum(r.wrong_elements for r in self.ranks)

    @property
    def wrong_by_source(self) -> dict[int, int]:
        total: dict[int, int] = {}
        for outcome in self.ranks:
            for source, count in outcome.wrong_by_source.items():
                total[source] = total.get(source, 0) + count
        return dict(sorted(total.items()))

    @property
    def correct(self) -> bool:
        return self.supported and self.wrong_elements == 0


def _exact_bits(dtype: torch.dtype) -> int:
    """Integers below 2**bits are exact in `dtype`."""
    if dtype.is_floating_point:  # eps = 2**-(mantissa bits); one more for the implicit leading bit
        return round(-math.log2(torch.finfo(dtype).eps)) + 1
    return torch.iinfo(dtype).bits - 1


class _SumCode:
    """Inputs of all_reduce/reduce_scatter whose exact sum reveals which ranks' contributions are missing or doubled."""

    def __init__(self, world_size: int, dtype: torch.dtype):
        self.n = world_size
        bits = _exact_bits(dtype)
        # one bit of headroom so that a doubled contribution of the top rank is still exact
        self.field_bits = min(6, (bits - 1) // world_size)
        if self.field_bits < 2:  # no room for a per-rank field: plain exact sums, no attribution
            self.field_bits = 0
            self.period = max(1, min(64, (1 << bits) // world_size))

    def values(self, elements: int) -> torch.Tensor:
        """v_i per element (int64): odd, so a power-of-two error (a flipped bit) never decodes to a rank."""
        i = torch.arange(elements, dtype=torch.int64)
        if not self.field_bits:
            return 1 + i % self.period
        b = self.field_bits
        return (1 << (b - 1)) + 1 + 2 * (i % (1 << (b - 2)))

    def contribution(self, rank: int, values: torch.Tensor) -> torch.Tensor:
        return values << (self.field_bits * rank) if self.field_bits else values

    def expected(self, values: torch.Tensor) -> torch.Tensor:
        return sum(self.contribution(r, values) for r in range(self.n))

    def attribute(self, received: torch.Tensor, expected: torch.Tensor, values: torch.Tensor):
        """(wrong elements per source rank, unattributed count) for wrong elements (CPU tensors)."""
        wrong = int(received.numel())
        if not self.field_bits:
            return {}, wrong
        got = received.to(torch.float64)
        exact = torch.isfinite(got) & (got == got.round()) & (got.abs() < 2.0**62)
        delta = (torch.where(exact, got, 0.0).to(torch.int64) - expected).abs()
        quotient = delta // values
        decodable = exact & (delta % values == 0) & (quotient > 0) & (quotient >> (self.field_bits * self.n) == 0)
        mask = (1 << self.field_bits) - 1
        digits = [(quotient >> (self.field_bits * r)) & mask for r in range(self.n)]
        for digit in digits:  # a missing/doubled rank shows as digit 1; anything else is not one rank's share
            decodable &= digit <= 1
        by_source = {r: int((decodable & (digit == 1)).sum()) for r, digit in enumerate(digits)}
        return {r: c for r, c in by_source.items() if c}, wrong - int(decodable.sum())


def _tagged(source: torch.Tensor | int, slot: torch.Tensor | int, index: torch.Tensor, n: int, slots: int,
            dtype: torch.dtype) -> torch.Tensor:
    """Values that name their source rank and slot, exact in `dtype`: 1 + source + n*(slot + slots*(j mod K))."""
    period = max(1, min(1024, (1 << _exact_bits(dtype)) // (n * slots)))
    return 1 + source + n * (slot + slots * (index % period))


@dataclass
class _Plan:
    send: torch.Tensor  # the buffer this rank contributes, refreshed from `source` before every call
    source: torch.Tensor
    output: torch.Tensor
    expected: torch.Tensor
    candidates: list[tuple[str, Callable[[], object]]]  # implementations, preferred first
    sources: torch.Tensor | None = None  # per output element, the rank it comes from (CPU); None for sums
    sum_values: torch.Tensor | None = None  # per output element, v_i (CPU), for sums

    def prepare(self, sentinel: float) -> None:
        if self.send.data_ptr() != self.output.data_ptr():
            self.output.fill_(sentinel)  # a call that writes nothing leaves the sentinel: caught as wrong
        self.send.copy_(self.source)


def _plan(op: str, rank: int, n: int, elements: int, dtype, device, code: _SumCode) -> _Plan:
    m = elements // n  # per-rank chunk of the chunked ops
    idx = torch.arange(elements, dtype=torch.int64)
    chunk_source = idx // max(m, 1)

    def on_device(values: torch.Tensor) -> torch.Tensor:
        return values.to(dtype).to(device)

    if op in ("all_reduce", "reduce_scatter"):
        values = code.values(elements)
        source = on_device(code.contribution(rank, values))
        send = source.clone()
        if op == "all_reduce":
            return _Plan(send, source, send, on_device(code.expected(values)),
                         [("all_reduce", lambda: dist.all_reduce(send))], sum_values=values)
        mine = slice(rank * m, (rank + 1) * m)
        output = torch.empty(m, dtype=dtype, device=device)
        tensor_call = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
        return _Plan(send, source, output, on_device(code.expected(values)[mine]),
                     [(tensor_call.__name__, lambda: tensor_call(output, send)),
                      ("reduce_scatter", lambda: dist.reduce_scatter(output, list(send.chunk(n))))],
                     sum_values=values[mine])
    if op == "all_gather":
        j = idx[:m]
        source = on_device(_tagged(rank, 0, j, n, 1, dtype))
        send, output = source.clone(), torch.empty(elements, dtype=dtype, device=device)
        tensor_call = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
        return _Plan(send, source, output, on_device(_tagged(chunk_source, 0, idx % m, n, 1, dtype)),
                     [(tensor_call.__name__, lambda: tensor_call(output, send)),
                      ("all_gather", lambda: dist.all_gather(list(output.chunk(n)), send))], sources=chunk_source)
    if op == "all_to_all":
        # chunk d of rank r's input goes to rank d; chunk s of rank r's output came from rank s
        source = on_device(_tagged(rank, chunk_source, idx % m, n, n, dtype))
        send, output = source.clone(), torch.empty(elements, dtype=dtype, device=device)
        return _Plan(send, source, output, on_device(_tagged(chunk_source, rank, idx % m, n, n, dtype)),
                     [("all_to_all_single", lambda: dist.all_to_all_single(output, send)),
                      ("all_to_all", lambda: dist.all_to_all(list(output.chunk(n)), list(send.chunk(n))))],
                     sources=chunk_source)
    if op == "broadcast":
        pattern = on_device(_tagged(0, 0, idx, n, 1, dtype))
        buffer = torch.empty(elements, dtype=dtype, device=device)
        # the root contributes the pattern; the others start from the sentinel so a missed write is caught
        source = pattern.clone() if rank == 0 else torch.full_like(pattern, _sentinel(dtype))
        return _Plan(buffer, source, buffer, pattern, [("broadcast", lambda: dist.broadcast(buffer, src=0))],
                     sources=torch.zeros(elements, dtype=torch.int64))
    if op == "send_recv":
        after, before = (rank + 1) % n, (rank - 1) % n
        source = on_device(_tagged(rank, 0, idx, n, 1, dtype))
        send, output = source.clone(), torch.empty(elements, dtype=dtype, device=device)

        def ring() -> None:
            ops = [dist.P2POp(dist.isend, send, after), dist.P2POp(dist.irecv, output, before)]
            for work in dist.batch_isend_irecv(ops):
                work.wait()

        return _Plan(send, source, output, on_device(_tagged(before, 0, idx, n, 1, dtype)),
                     [("batch_isend_irecv", ring)], sources=torch.full((elements,), before, dtype=torch.int64))
    raise ValueError(f"unknown collective {op!r}; expected one of {', '.join(stats.OPS)}")


def _sentinel(dtype: torch.dtype) -> float:
    return float("nan") if dtype.is_floating_point else -1


def _short(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line[:300]}"


def measure_collective(op: str, size_bytes: int, *, device, warmup: int = 2, repeats: int = 10,
                       dtype: torch.dtype = torch.float32,
                       input_fault: Callable[[torch.Tensor], None] | None = None) -> CollectiveResult:
    """Time `op` at `size_bytes` (nccl-tests' convention) on every rank, and check the result of the probe call, of
    every warm-up call but the last and of the last timed call bit-exactly.

    `input_fault`, when given on a rank, alters that rank's contribution in place after it is built: the
    self-test of the correctness check (a rank sending wrong data must be caught and named).
    """
    if not dist.is_initialized():
        raise RuntimeError("measure_collective needs an initialized torch.distributed process group")
    device = torch.device(device)
    rank, n = dist.get_rank(), dist.get_world_size()
    # `elements` counts the op's buffer in nccl-tests' byte convention, so size_bytes = elements x element size
    elements = stats.elements_for(op, size_bytes, torch.empty((), dtype=dtype).element_size(), n)
    code = _SumCode(n, dtype)
    plan = _plan(op, rank, n, elements, dtype, device, code)
    if input_fault is not None and not (op == "broadcast" and rank != 0):
        input_fault(plan.source)
    sentinel = _sentinel(dtype)
    wrong_by_source: dict[int, int] = {}
    tally = {"calls": 0, "wrong": 0, "unattributed": 0}

    def check() -> None:
        tally["calls"] += 1
        wrong = plan.output != plan.expected  # NaN (the sentinel) compares unequal
        count = int(wrong.sum())
        if not count:
            return
        where = wrong.cpu()
        tally["wrong"] += count
        if plan.sources is not None:
            by_source = {int(s): int((plan.sources[where] == s).sum()) for s in plan.sources[where].unique()}
            unattributed = 0
        else:
            received = plan.output.cpu()[where]
            expected = plan.expected.cpu().to(torch.int64)[where]
            by_source, unattributed = code.attribute(received, expected, plan.sum_values[where])
        tally["unattributed"] += unattributed
        for source, c in by_source.items():
            wrong_by_source[source] = wrong_by_source.get(source, 0) + c

    if op == "send_recv" and n < 2:
        implementation, reason = "", "send_recv needs at least 2 ranks"
    else:
        implementation, reason = _choose_implementation(plan, sentinel, device, check)
    times: list[float] = []
    if implementation:
        call = dict(plan.candidates)[implementation]
        align = torch.zeros(1, device=device)
        for i in range(warmup + repeats):
            plan.prepare(sentinel)
            dist.all_reduce(align)  # start together: a rank's time must not include waiting for a late peer
            synchronize(device)
            begin = time.perf_counter()
            call()
            synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - begin)
            # Reading a fresh result slows the next call (measured: 30-45% at 1 MiB on gloo, 10% at 128 MiB), so
            # a timed call never follows a check: the warm-ups but the last one (which settles the buffers before
            # the first timed call) and the last timed call are checked; the others are only timed.
            if i < warmup - 1 or i == warmup + repeats - 1:
                check()
    outcome = RankOutcome(rank, tuple(times), tally["calls"], tally["wrong"], wrong_by_source, tally["unattributed"])
    outcomes: list[RankOutcome | None] = [None] * n
    dist.all_gather_object(outcomes, outcome)
    slowest = tuple(max(o.times_s[i] for o in outcomes) for i in range(len(times)))
    element_size = plan.expected.element_size()
    return CollectiveResult(op, implementation, str(dist.get_backend()), n, str(dtype).removeprefix("torch."),
                            elements * element_size, elements, reason, tuple(outcomes), slowest)


def _choose_implementation(plan: _Plan, sentinel: float, device, check: Callable[[], None]) -> tuple[str, str]:
    """The first candidate every rank can run, found by one checked call each; else ("", the backends' errors).

    The ranks agree through all_gather_object so that all of them use the same call or all give up.
    """
    reasons = []
    for name, call in plan.candidates:
        plan.prepare(sentinel)
        try:
            call()
            synchronize(device)
            error = ""
        except _BACKEND_ERRORS as exc:
            error = _short(exc)
        errors: list[str | None] = [None] * dist.get_world_size()
        dist.all_gather_object(errors, error)
        failed = [f"rank {r}: {e}" for r, e in enumerate(errors) if e]
        if not failed:
            check()
            return name, ""
        reasons.append(f"{name} failed on {failed[0]}")
    return "", "; ".join(reasons)
