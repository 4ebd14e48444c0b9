"""Point-to-point bandwidth and latency of every ordered pair of ranks, with every payload checked bit-exactly.

Every rank calls `measure_p2p_matrix` with the same arguments. The ordered pairs (src, dst) are measured
one at a time, in the same order on every rank, in rounds of one iteration of every pair; the ranks not in
the pair go straight to the tiny all_reduce that closes each iteration, so no two pairs ever share the
network and one slow link cannot hide behind, or slow down, another.

Per iteration of a pair:
- bandwidth: dst posts a one-byte "ready" token (so dst's checking of the previous payload is never
  timed), src starts its clock, sends `size_bytes`, and stops at dst's one-byte acknowledgement. The time
  is one transfer plus one tiny message; against large sizes the tiny message is negligible, and sending
  the ack is the only way to know on one clock that the data has arrived (a send may return as soon as
  the data is queued).
- latency: a ping-pong of `latency_bytes` each way, timed at src; latency is half the round trip.
Payloads are uint8 patterns that name their sender; the receive buffer is pre-filled with the bitwise
complement of what is expected, so an element never written is caught as wrong as surely as a wrong one.
Wrong elements are counted as wrong[sender][receiver] (the pong of pair (src, dst) counts to (dst, src)).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from acceldoctor.checks.performance._timing import Measurement
from acceldoctor.devices.backends import synchronize
from acceldoctor.interconnect import stats
from acceldoctor.interconnect.stragglers import robust_sd


@dataclass(frozen=True)
class LinkMeasurement:
    """One ordered pair: src's timings (seconds per iteration) of the transfer and of the ping-pong."""

    src: int
    dst: int
    size_bytes: int
    transfer_times_s: tuple[float, ...]
    round_trip_times_s: tuple[float, ...]

    @property
    def bandwidth_gbps(self) -> float:
        return stats.algbw_gbps(self.size_bytes, statistics.median(self.transfer_times_s))

    @property
    def bandwidth_relative_iqr(self) -> float:
        return Measurement(self.transfer_times_s, 1).relative_spread

    @property
    def latency_us(self) -> float:
        return statistics.median(self.round_trip_times_s) / 2 * 1e6

    @property
    def latency_relative_iqr(self) -> float:
        return Measurement(self.round_trip_times_s, 1).relative_spread


@dataclass(frozen=True)
class P2PMatrix:
    """Indexed [src][dst]; the diagonal (and any pair not measured) is nan, and 0 in `wrong`."""

    world_size: int
    backend: str
    size_bytes: int
    latency_bytes: int
    links: tuple[LinkMeasurement, ...]
    bandwidth: tuple[tuple[float, ...], ...]  # GB/s (10^9 bytes/s), from the median transfer time
    latency_us: tuple[tuple[float, ...], ...]  # half the median round trip
    wrong: tuple[tuple[int, ...], ...]  # wrong elements received by dst from src, over every checked call

    @property
    def correct(self) -> bool:
        return not any(any(row) for row in self.wrong)

    def slow_links(self, margin: float, k: float = 3.0) -> list[tuple[int, int]]:
        """Pairs below (1 - margin) x the median bandwidth of all pairs AND more than k robust SDs below it.

        Both conditions, so that neither a quiet system's small differences nor a noisy one's spread is
        reported; slowest first. The spread is taken of the logarithms: noise on a rate is a factor (a busy
        host makes some pairs 2x faster than the median and others 2x slower), and on a linear scale the fast
        side would widen the spread until not even a link at a tenth of the median stood out.
        """
        values = [link.bandwidth_gbps for link in self.links]
        if len(values) < 2 or min(values) <= 0:
            return []
        logs = [math.log(bw) for bw in values]
        center, log_center, spread = statistics.median(values), statistics.median(logs), robust_sd(logs)
        slow = [link for link, bw, log in zip(self.links, values, logs, strict=True)
                if bw < (1 - margin) * center and log_center - log > k * spread]
        return [(link.src, link.dst) for link in sorted(slow, key=lambda link: link.bandwidth_gbps)]

    def faster_of_each_link(self, again: P2PMatrix) -> P2PMatrix:
        """Each link's faster measurement of this run and `again` (same pairs); wrong elements of both, added.

        A degraded link is slow every time it is measured, while a burst of other load seldom hits the same
        pair twice: a link stays slow only if its better measurement is slow too.
        """
        mine, theirs = {(k.src, k.dst): k for k in self.links}, {(k.src, k.dst): k for k in again.links}
        if mine.keys() != theirs.keys() or self.size_bytes != again.size_bytes:
            raise ValueError("faster_of_each_link needs two measurements of the same pairs and size")
        links = [max(mine[pair], theirs[pair], key=lambda k: k.bandwidth_gbps) for pair in mine]
        wrong = {(s, d): self.wrong[s][d] + again.wrong[s][d]
                 for s in range(self.world_size) for d in range(self.world_size)}
        return _assemble(self.world_size, self.backend, self.size_bytes, self.latency_bytes, [(links, wrong)])

    def as_table(self) -> str:
        """Readable matrices: rows are senders, columns receivers."""
        sections = [(f"bandwidth GB/s at {self.size_bytes} B", self.bandwidth, "{:.3g}"),
                    (f"latency us at {self.latency_bytes} B (half round trip)", self.latency_us, "{:.3g}")]
        if not self.correct:
            sections.append(("wrong elements", self.wrong, "{}"))
        lines = []
        for title, matrix, fmt in sections:
            lines.append(f"{title} (row: sender, column: receiver)")
            lines.append("src\\dst " + "".join(f"{dst:>9}" for dst in range(self.world_size)))
            for src, row in enumerate(matrix):
                cells = ["-" if src == dst else fmt.format(v) for dst, v in enumerate(row)]
                lines.append(f"{src:>7} " + "".join(f"{c:>9}" for c in cells))
        return "\n".join(lines)


def _pattern(sender: int, elements: int, device) -> torch.Tensor:
    """uint8 bytes that name their sender and vary along the buffer (a shifted or stale chunk is caught)."""
    # (7 i + 31 sender + 1) mod 256 repeats every 256 bytes: tile one period, on the device, rather than compute
    # per element or copy a whole host buffer over (patterns are made afresh for every transfer)
    period = ((torch.arange(256, dtype=torch.int64) * 7 + sender * 31 + 1) % 256).to(torch.uint8)
    return period.to(device).repeat(-(-elements // 256))[:elements]


def _complement(expected: torch.Tensor) -> torch.Tensor:
    """A receive buffer that starts as the complement of what is expected: an element never written is wrong."""
    return expected.bitwise_not()


class _Tally:
    """Wrong elements per (sender, receiver), over every checked receive."""

    def __init__(self) -> None:
        self.wrong: dict[tuple[int, int], int] = {}

    def check(self, sender: int, receiver: int, got: torch.Tensor, expected: torch.Tensor) -> None:
        # torch.equal is a fast whole-buffer compare; counting (a slow bool sum) only when something differs
        count = 0 if torch.equal(got, expected) else int((got != expected).sum())
        self.wrong[(sender, receiver)] = self.wrong.get((sender, receiver), 0) + count


def _send_side(src: int, dst: int, payload: torch.Tensor, ping: torch.Tensor, device, token: torch.Tensor,
               tally: _Tally, hook) -> tuple[float, float]:
    """One iteration of pair (src, dst) on src, sending its own patterns: the timed transfer, then the timed
    ping-pong."""
    pong = _pattern(dst, ping.numel(), device)
    small = _complement(pong)
    dist.recv(token, dst)  # dst is ready, and has checked the previous payload
    synchronize(device)
    begin = time.perf_counter()
    if hook is not None:
        hook(src, dst)
    dist.send(payload, dst)
    dist.recv(token, dst)  # the acknowledgement: the payload has arrived
    synchronize(device)
    transfer = time.perf_counter() - begin
    begin = time.perf_counter()
    if hook is not None:
        hook(src, dst)
    dist.send(ping, dst)
    dist.recv(small, dst)
    synchronize(device)
    round_trip = time.perf_counter() - begin
    tally.check(dst, src, small, pong)
    return transfer, round_trip


def _receive_side(src: int, dst: int, size_bytes: int, latency_bytes: int, device, token: torch.Tensor,
                  tally: _Tally) -> None:
    """One iteration of pair (src, dst) on dst: receive and check the payload, answer the ping."""
    payload, ping, pong = (_pattern(src, size_bytes, device), _pattern(src, latency_bytes, device),
                           _pattern(dst, latency_bytes, device))
    received, small = _complement(payload), _complement(ping)
    synchronize(device)
    dist.send(token, src)
    dist.recv(received, src)
    synchronize(device)
    dist.send(token, src)
    dist.recv(small, src)
    dist.send(pong, src)
    tally.check(src, dst, received, payload)
    tally.check(src, dst, small, ping)


def measure_p2p_matrix(size_bytes: int, *, device, warmup: int = 1, repeats: int = 5, latency_bytes: int = 8,
                       pairs: Iterable[tuple[int, int]] | None = None,
                       hook: Callable[[int, int], None] | None = None) -> P2PMatrix:
    """Measure every ordered pair (or only `pairs`, the same on every rank) and return the matrix on every rank.

    The cost is pairs x (warmup + repeats) x (one transfer + one ping-pong), one pair at a time: with many
    ranks, pass `pairs` (e.g. each rank's neighbours) to bound it. `hook(src, dst)`, when given, runs on the
    sending rank inside every timed transfer and ping-pong of the pair: fault injection for tests.
    """
    if not dist.is_initialized():
        raise RuntimeError("measure_p2p_matrix needs an initialized torch.distributed process group")
    if size_bytes < 1 or latency_bytes < 1:
        raise ValueError(f"sizes must be at least 1 byte, got {size_bytes} and {latency_bytes}")
    device = torch.device(device)
    rank, n = dist.get_rank(), dist.get_world_size()
    schedule = [(s, d) for s in range(n) for d in range(n) if s != d] if pairs is None else list(pairs)
    if any(s == d or not (0 <= s < n and 0 <= d < n) for s, d in schedule):
        raise ValueError(f"pairs must be two different ranks below {n}, got {schedule}")
    token = torch.zeros(1, dtype=torch.uint8, device=device)
    align = torch.zeros(1, device=device)
    tally = _Tally()
    # what this rank sends is the same to every peer: made once, not for every transfer
    own_payload, own_ping = _pattern(rank, size_bytes, device), _pattern(rank, latency_bytes, device)
    timings = {pair: ([], []) for pair in schedule if pair[0] == rank}
    # Round by round, one iteration of every pair per round: a burst of other load on a shared host then falls
    # on one iteration of several pairs alike, which the medians absorb, rather than on a whole series of one
    # pair, which would make that pair look like a slow link.
    for iteration in range(warmup + repeats):
        for src, dst in schedule:
            if rank == src:
                transfer, round_trip = _send_side(src, dst, own_payload, own_ping, device, token, tally, hook)
                if iteration >= warmup:
                    timings[(src, dst)][0].append(transfer)
                    timings[(src, dst)][1].append(round_trip)
            elif rank == dst:
                _receive_side(src, dst, size_bytes, latency_bytes, device, token, tally)
            dist.all_reduce(align)  # everyone waits for the pair to finish: pairs never overlap
    measured = [LinkMeasurement(src, dst, size_bytes, tuple(transfers), tuple(round_trips))
                for (src, dst), (transfers, round_trips) in timings.items()]
    gathered: list[tuple[list[LinkMeasurement], dict] | None] = [None] * n
    dist.all_gather_object(gathered, (measured, tally.wrong))
    return _assemble(n, str(dist.get_backend()), size_bytes, latency_bytes, gathered)


def _assemble(n: int, backend: str, size_bytes: int, latency_bytes: int, gathered) -> P2PMatrix:
    links = sorted((link for rank_links, _ in gathered for link in rank_links), key=lambda k: (k.src, k.dst))
    nan = float("nan")
    bandwidth = [[nan] * n for _ in range(n)]
    latency = [[nan] * n for _ in range(n)]
    wrong = [[0] * n for _ in range(n)]
    for link in links:
        bandwidth[link.src][link.dst] = link.bandwidth_gbps
        latency[link.src][link.dst] = link.latency_us
    for _, rank_wrong in gathered:
        for (sender, receiver), count in rank_wrong.items():
            wrong[sender][receiver] += count
    return P2PMatrix(n, backend, size_bytes, latency_bytes, tuple(links), tuple(map(tuple, bandwidth)),
                     tuple(map(tuple, latency)), tuple(map(tuple, wrong)))
