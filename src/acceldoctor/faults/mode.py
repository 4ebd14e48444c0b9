"""The TorchFunctionMode that routes torch calls through an active fault."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch.overrides import TorchFunctionMode

_suspend_depth = 0


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """Run reference code untouched by any injected fault."""
    global _suspend_depth
    _suspend_depth += 1
    try:
        yield
    finally:
        _suspend_depth -= 1


class FaultMode(TorchFunctionMode):
    def __init__(self, fault):
        super().__init__()
        self.fault = fault

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _suspend_depth == 0 and func in self.fault.targets:
            return self.fault.apply(func, args, kwargs)
        return func(*args, **kwargs)


@contextlib.contextmanager
def injected(name: str | None) -> Iterator:
    """Activate fault `name` (see `acceldoctor list --faults`), yielding it (its `calls` count what it saw);
    `None` injects nothing and yields None."""
    if name is None:
        yield None
        return
    from acceldoctor.faults.catalog import get_fault

    fault = get_fault(name)
    fault.reset()
    with FaultMode(fault):
        yield fault
