"""Faults of one rank in a distributed group: the failures users of multi-chip clusters report.

They act on torch.distributed calls (patched on the faulty rank only, for the length of one check), so the
interconnect checks meet them exactly where a bad chip, a bad link or a dead process would show:
- `corrupt-rank:R` sends wrong data: every 8th element of each buffer rank R contributes is zeroed;
- `slow-rank:R` is a straggler: its matrix products take three times as long and each of its collective
  calls starts 10 ms late;
- `slow-link:A-B` is one degraded link: every payload rank A sends to rank B is held back 50 ms
  (a transfer several times slower, even when the CPU ranks of the tests are slowed by a busy host);
- `die-rank:R` and `hang-rank:R` kill, or freeze, rank R at its first collective.
Tiny buffers (one element: alignment tokens, acknowledgements) are left alone so that only the
measured traffic is affected, as a real fault in the data path would be.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from acceldoctor.faults.base import MATMUL_FAMILY, Fault, SlowOp, UnknownFault
from acceldoctor.faults.mode import FaultMode

# torch.distributed call -> positions of the buffers the calling rank contributes.
_CONTRIBUTED = {
    "all_reduce": (0,), "broadcast": (0,), "send": (0,),
    "reduce_scatter_tensor": (1,), "reduce_scatter_single": (1,), "reduce_scatter": (1,),
    "all_gather_into_tensor": (1,), "all_gather_single": (1,), "all_gather": (1,),
    "all_to_all_single": (1,), "all_to_all": (1,), "batch_isend_irecv": (0,),
}


def _contributed(name: str, args: tuple, kwargs: dict, rank: int) -> list[torch.Tensor]:
    """The tensors this call sends (P2P ops: only the isend ones; broadcast: only at the root)."""
    if name == "broadcast" and kwargs.get("src", args[1] if len(args) > 1 else 0) != rank:
        return []
    found: list[torch.Tensor] = []
    for position in _CONTRIBUTED[name]:
        if position >= len(args):
            continue
        value = args[position]
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, dist.P2POp):
                if getattr(item.op, "__name__", "") == "isend":
                    found.append(item.tensor)
            elif isinstance(item, torch.Tensor):
                found.append(item)
    return [t for t in found if t.numel() >= 2]


def _peers(name: str, args: tuple, kwargs: dict) -> set[int]:
    """Destination ranks of a point-to-point send (empty for collectives)."""
    if name == "send":
        tensor = args[0] if args else kwargs.get("tensor")
        return {kwargs.get("dst", args[1] if len(args) > 1 else None)} if tensor.numel() >= 2 else set()
    if name == "batch_isend_irecv":
        return {op.peer for op in args[0] if getattr(op.op, "__name__", "") == "isend" and op.tensor.numel() >= 2}
    return set()


@dataclass
class RankFault(Fault):
    """A fault of rank `rank` (`NAME:RANK` picks it; rank 1 by default, which every group of two has)."""

    rank: int = 1
    distributed: bool = True
    # The smallest group in which the catching check can name the culprit (a slow one among two is ambiguous).
    ranks_needed: int = 2

    def with_argument(self, argument: str) -> RankFault:
        try:
            rank = int(argument)
        except ValueError:
            raise UnknownFault(f"fault {self.name!r}: {argument!r} is not a rank number (e.g. {self.name}:2)") from None
        if rank < 0:
            raise UnknownFault(f"fault {self.name!r}: the rank must be 0 or more, got {rank}")
        return dataclasses.replace(self, rank=rank, calls=0)

    def ranks(self) -> set[int]:
        return {self.rank}

    def before_call(self, name: str, args: tuple, kwargs: dict, rank: int) -> None:
        """Runs on a faulty rank just before each torch.distributed call it makes."""

    @contextlib.contextmanager
    def extra(self) -> Iterator[None]:
        """Anything else the fault changes on its rank while a check runs (e.g. slower compute)."""
        yield


class CorruptRank(RankFault):
    def before_call(self, name, args, kwargs, rank):
        for tensor in _contributed(name, args, kwargs, rank):
            flat = tensor.view(-1)
            flat[::8] = 0 if tensor.is_floating_point() else flat[::8] ^ 0x5A


class SlowRank(RankFault):
    DELAY_S = 0.010
    COMPUTE_PERCENT = 200.0

    def before_call(self, name, args, kwargs, rank):
        if _contributed(name, args, kwargs, rank):
            time.sleep(self.DELAY_S)

    @contextlib.contextmanager
    def extra(self) -> Iterator[None]:
        with FaultMode(SlowOp("slow-compute", "", "", "", "", MATMUL_FAMILY, percent=self.COMPUTE_PERCENT)):
            yield


class DieRank(RankFault):
    def before_call(self, name, args, kwargs, rank):
        if _contributed(name, args, kwargs, rank):
            os.kill(os.getpid(), signal.SIGKILL)


class HangRank(RankFault):
    def before_call(self, name, args, kwargs, rank):
        if _contributed(name, args, kwargs, rank):
            threading.Event().wait()


@dataclass
class SlowLink(RankFault):
    """Sends from rank `rank` to rank `peer` are held back (`slow-link:A-B`; 0-1 by default)."""

    rank: int = 0
    peer: int = 1
    ranks_needed: int = 3
    DELAY_S = 0.050

    def with_argument(self, argument: str) -> SlowLink:
        source, _, target = argument.partition("-")
        try:
            pair = int(source), int(target)
        except ValueError:
            raise UnknownFault(f"fault {self.name!r}: {argument!r} is not a pair of ranks (e.g. {self.name}:0-1)") \
                from None
        if min(pair) < 0 or pair[0] == pair[1]:
            raise UnknownFault(f"fault {self.name!r}: need two different ranks of 0 or more, got {argument!r}")
        return dataclasses.replace(self, rank=pair[0], peer=pair[1], calls=0)

    def before_call(self, name, args, kwargs, rank):
        if self.peer in _peers(name, args, kwargs):
            time.sleep(self.DELAY_S)


RANK_FAULTS: tuple[RankFault, ...] = (
    CorruptRank("corrupt-rank", "Rank 1 (`corrupt-rank:R` for another) zeroes every 8th element of each buffer "
                "it contributes to a collective or sends.",
                "a chip, driver or link that corrupts data in flight", "interconnect.all_reduce", "fail"),
    SlowRank("slow-rank", "Rank 1 (`slow-rank:R` for another) is a straggler: its matrix products take three times "
             "as long and each of its collective calls starts 10 ms late.",
             "a throttled or mis-clocked chip, or a busy host, holding back every collective",
             "interconnect.stragglers", "fail", ranks_needed=3),
    SlowLink("slow-link", "Every payload rank 0 sends to rank 1 (`slow-link:A-B` for another pair) is held back "
             "50 ms.", "one degraded link (a bad cable, a link trained down, a flapping port)", "interconnect.p2p",
             "warn"),
    DieRank("die-rank", "Rank 1 (`die-rank:R` for another) kills itself (SIGKILL) at its first collective.",
            "a process lost to a device reset, the OOM killer or a node failure mid-collective",
            "interconnect.all_reduce", "crash"),
    HangRank("hang-rank", "Rank 1 (`hang-rank:R` for another) freezes at its first collective and never answers; "
             "its peers give up after the group timeout (`--timeout`, else 60 s).",
             "a rank stuck in a kernel or a lost completion, which leaves its peers waiting",
             "interconnect.all_reduce", "timeout"),
)


@contextlib.contextmanager
def rank_fault_active(fault: RankFault | None, rank: int) -> Iterator[None]:
    """Install `fault` in this process for the length of the block when this rank is one it affects."""
    if fault is None or rank not in fault.ranks():
        yield
        return
    originals = {name: getattr(dist, name) for name in _CONTRIBUTED if hasattr(dist, name)}

    def wrapped(name, original):
        @functools.wraps(original)
        def call(*args, **kwargs):
            fault.calls += 1
            fault.before_call(name, args, kwargs, rank)
            return original(*args, **kwargs)
        return call

    for name, original in originals.items():
        setattr(dist, name, wrapped(name, original))
    try:
        with fault.extra():
            yield
    finally:
        for name, original in originals.items():
            setattr(dist, name, original)
