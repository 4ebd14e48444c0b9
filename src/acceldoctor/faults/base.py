"""What every fault is: the op families faults target, the Fault base class and the slowed-op fault."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

MATMUL_FAMILY = frozenset({
    torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.__rmatmul__,
    torch.mm, torch.Tensor.mm, torch.bmm, torch.Tensor.bmm, F.linear,
})
SOFTMAX_FAMILY = frozenset({
    F.softmax, torch.softmax, torch.Tensor.softmax, F.log_softmax, torch.log_softmax, torch.Tensor.log_softmax,
})
SUM_FAMILY = frozenset({torch.sum, torch.Tensor.sum, torch.mean, torch.Tensor.mean})
CONV_FAMILY = frozenset({F.conv2d, torch.conv2d})
LAYER_NORM_FAMILY = frozenset({F.layer_norm, torch.layer_norm})


class UnknownFault(KeyError):
    pass


@dataclass
class Fault:
    name: str
    summary: str
    imitates: str
    caught_by: str  # check id expected to detect it
    expected_status: str
    targets: frozenset = field(default_factory=frozenset)
    calls: int = 0
    # True when the fault only shows against a baseline (a slowdown is invisible without a figure to compare to).
    needs_baseline: bool = False
    # True for the faults of one rank in a group (faults/ranks.py): they need `check --nproc N`.
    distributed: bool = False

    def reset(self) -> None:
        self.calls = 0

    def with_argument(self, argument: str) -> Fault:
        """This fault with the setting written after its name (`slow-matmul:40`, `corrupt-rank:2`)."""
        raise UnknownFault(f"fault {self.name!r} takes no argument, got {self.name}:{argument}")

    def apply(self, func, args, kwargs):
        self.calls += 1
        return self.corrupt(func(*args, **kwargs), func, args, kwargs)

    def corrupt(self, out, func, args, kwargs):  # overridden per fault
        return out

    def why_unseen(self) -> str:
        """Why a run with this fault may have shown nothing (after the run: `calls` is what it saw)."""
        if not self.calls:
            return f"the model never called the ops {self.name} acts on"
        return f"its {self.calls} call(s) changed nothing the comparison could see"


@dataclass
class SlowOp(Fault):
    """Every targeted op takes `percent`% longer than it should, and computes the right result."""

    percent: float = 25.0

    def apply(self, func, args, kwargs):
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        device = tensors[0].device if tensors else torch.device("cpu")
        # The op's own time is measured around a synchronize, so an asynchronous device is slowed in proportion
        # to its real work, not to its launch time.
        _synchronize(device)
        begin = time.perf_counter()
        out = func(*args, **kwargs)
        _synchronize(device)
        until = begin + (time.perf_counter() - begin) * (1 + self.percent / 100)
        # Spin rather than sleep: sleep overshoots by tens of microseconds, more than a small product takes.
        while time.perf_counter() < until:
            pass
        return out

    def with_argument(self, argument: str) -> SlowOp:
        try:
            percent = float(argument.removesuffix("%"))
        except ValueError:
            raise UnknownFault(f"fault {self.name!r}: {argument!r} is not a percentage (e.g. {self.name}:25)") from None
        return self.with_percent(percent)

    def with_percent(self, percent: float) -> SlowOp:
        if not 0 < percent <= 1000:
            raise UnknownFault(f"fault {self.name!r}: the slowdown must be between 0 and 1000 percent, got {percent:g}")
        return dataclasses.replace(self, percent=percent, calls=0)


def _synchronize(device: torch.device) -> None:
    from acceldoctor.devices.backends import synchronize

    synchronize(device)
